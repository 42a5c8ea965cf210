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
# container can reach). This process waits for a line, then gathers the lines that follow for at
# most 0.2 s (or until 64 KiB have gathered) and writes them all with one write(). A line thus
# reaches `docker compose logs` at most 0.2 s late; under load one write carries hundreds of lines.
# (Writing only what is already waiting, with no wait at all, was tried first: this process then
# kept up so well that most writes carried one or two lines, and Docker's cost hardly fell.)
#
# If this process cannot keep up, the kernel's receive queue fills and HAProxy drops lines
# rather than slow down requests; `show info` on the runtime API counts them (DroppedLogs).
# Perl because Debian's base image already has it (perl-base, with Time::HiRes): no extra package.
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time);

my $port = $ENV{LOG_SHIPPER_PORT} // 5140;
# Write when this much has gathered, or this long after the first line of a batch.
my $batch_bytes = 65536;
my $batch_seconds = 0.2;

my $socket = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port", Proto => 'udp')
    or die "log-shipper: cannot listen on 127.0.0.1:$port/udp: $!\n";
# Room for 4 MiB of waiting lines (default ~200 KiB, a few hundred lines): bursts while this
# process waits for a CPU are absorbed instead of dropped. The kernel caps it at net.core.rmem_max.
setsockopt($socket, SOL_SOCKET, SO_RCVBUF, 4 * 1024 * 1024)
    or warn "log-shipper: could not enlarge the receive queue: $!\n";

# Stop cleanly on the container's stop signal (the entrypoint forwards it).
$SIG{TERM} = $SIG{INT} = sub { exit 0 };

# The socket's bit for select(): "is a line waiting?"
my $readable = '';
vec($readable, fileno($socket), 1) = 1;

while (1) {
    # Block until the first line of a batch arrives (a signal may interrupt: then wait again).
    defined $socket->recv(my $line, 65535) or next;
    my $batch = '';
    my $deadline = time + $batch_seconds;
    while (1) {
        # HAProxy sends a line without its newline.
        $batch .= $line =~ /\n\z/ ? $line : "$line\n";
        last if length $batch >= $batch_bytes;
        # Wait for the next line, but not past the deadline.
        my $left = $deadline - time;
        last if $left <= 0 or select(my $ready = $readable, undef, undef, $left) <= 0;
        defined $socket->recv($line, 65535) or last;
    }
    # One write for the whole batch (syswrite may write part of it: write the rest).
    while (length $batch) {
        my $written = syswrite STDOUT, $batch;
        die "log-shipper: cannot write to stdout: $!\n" unless defined $written;
        substr($batch, 0, $written) = '';
    }
}
