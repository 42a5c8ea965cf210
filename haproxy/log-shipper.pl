#!/usr/bin/perl
# log-shipper.pl - HAProxy's access log to the container's stdout, in few large writes.
#
# Why it exists: every write() to a container's stdout is carried by containerd-shim and dockerd
# (read, copy, encode as JSON, append to the log file), and that costs them CPU per write.
# HAProxy logs one line per request and has no option to buffer its log, so at tens of thousands
# of requests per second Docker's log path would cost more CPU than HAProxy itself (measured:
# README "Load testing"). nginx has `access_log ... buffer=`; this is the same idea for HAProxy.
#
# How: HAProxy sends each log line as a UDP datagram to 127.0.0.1:5140 (`log` in haproxy.cfg;
# syslog's classic transport, here on the container's own loopback, which nothing outside the
# container can reach). This process waits for a line, then takes every line already waiting,
# naps 5 ms while more gather in the kernel's queue, takes those, and so on for at most 0.2 s (or
# until 64 KiB have gathered), then writes them all with one write(). A line thus reaches `docker
# compose logs` at most 0.2 s late; under load one write carries hundreds of lines, and this
# process wakes up 200 times a second at most, not once per line. (Two simpler loops were tried
# and measured: writing only what was already waiting, with no wait, gave writes of one or two
# lines; waiting in select() for each next line woke this process once per line, which cost
# HAProxy's container more than the writes saved.) The 5 ms nap keeps the queue short: at 25,000
# lines a second about 125 lines wait, well within even a small receive queue.
#
# If this process cannot keep up, the kernel's receive queue fills and HAProxy drops lines
# rather than slow down requests; `show info` on the runtime API counts them (DroppedLogs).
# Perl because Debian's base image already has it (perl-base, with Time::HiRes): no extra package.
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF MSG_DONTWAIT);
use Time::HiRes qw(time);

my $port = $ENV{LOG_SHIPPER_PORT} // 5140;
# Write when this much has gathered, or this long after the first line of a batch.
my $batch_bytes = 65536;
my $batch_seconds = 0.2;
# How long to nap when no line is waiting, before looking again.
my $nap_seconds = 0.005;

my $socket = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port", Proto => 'udp')
    or die "log-shipper: cannot listen on 127.0.0.1:$port/udp: $!\n";
# Room for 4 MiB of waiting lines (default ~200 KiB, a few hundred lines): bursts while this
# process waits for a CPU are absorbed instead of dropped. The kernel caps it at net.core.rmem_max.
setsockopt($socket, SOL_SOCKET, SO_RCVBUF, 4 * 1024 * 1024)
    or warn "log-shipper: could not enlarge the receive queue: $!\n";

# Stop cleanly on the container's stop signal (the entrypoint forwards it).
$SIG{TERM} = $SIG{INT} = sub { exit 0 };

while (1) {
    # Block until the first line of a batch arrives (a signal may interrupt: then wait again).
    defined $socket->recv(my $line, 65535) or next;
    my $batch = '';
    my $deadline = time + $batch_seconds;
    while (1) {
        # HAProxy sends a line without its newline.
        $batch .= $line =~ /\n\z/ ? $line : "$line\n";
        last if length $batch >= $batch_bytes;
        # The next line if one is waiting; if none is, nap and look again, until the deadline.
        next if defined $socket->recv($line, 65535, MSG_DONTWAIT);
        last if time + $nap_seconds > $deadline;
        select(undef, undef, undef, $nap_seconds);
        defined $socket->recv($line, 65535, MSG_DONTWAIT) or last;
    }
    # One write for the whole batch (syswrite may write part of it: write the rest).
    while (length $batch) {
        my $written = syswrite STDOUT, $batch;
        die "log-shipper: cannot write to stdout: $!\n" unless defined $written;
        substr($batch, 0, $written) = '';
    }
}
