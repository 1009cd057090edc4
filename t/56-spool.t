# Licensed under the Apache License, Version 2.0; see LICENSE.
# A CA that cannot be asked: the device gets PENDING, not FAILURE; the RA
# keeps its request in the spool (SCEPSpoolDir), as the device sent it,
# across a full restart; the device's next CertPoll submits it again and
# gets the answer.  The one-time password is spent only when the CA
# accepts: while the request waits in the spool it is not spent (another
# request may use it, and then the spooled one fails), and one password
# never gets two certificates.  The CA is the embedded one behind the
# test-only provider "flaky" (t/c-modules/scep_flaky), switched off by
# writing "down" to t/state/flaky.  The scep_enroll virtual host of
# t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT serial_of logged reply_is);

admins_file();

my $O = 'mod_scep TEST ONLY';
my $FLAKY = '/enroll/flaky/pkiclient.exe';
my $state = Apache::Test::vars('t_state');
my $switch = File::Spec->catfile($state, 'flaky');
my $spool = File::Spec->catfile($state, 'spool');
my @K = new_keys(map { "s56-$_" } 1 .. 6);
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

sub ca { spew($switch, shift) }
# spooled: entries in the spool beyond those earlier tests left there
# (t/52-provider.t's provider that always fails).
my $before;
sub spooled {
    opendir(my $d, $spool) or return 0;
    my $n = grep { !/^\./ } readdir $d;
    $before //= $n;
    return $n - $before;
}
sub submits {
    my $tid = shift;
    return grep { /^submit \Q$tid\E / } split /\n/, (slurp("$switch.log") // '');
}
sub poll {
    my ($e, $key) = @_;
    return enroll($key, msgtype => 20, transid => $e->{msg}{transid}, csr => $e->{csr},
                  content => iasubj_file(subject_from => $e->{csr}), path => $FLAKY);
}
sub rows { my $cn = shift; return scalar db_query("SELECT serial FROM scep_issued WHERE subject LIKE '%$cn%'") }

ok(-d $spool, 'httpd made the spool directory (SCEPSpoolDir)');
is(spooled(), 0, 'what is in the spool before');

# --- down, then up: the poll gets the certificate ---

ca('down');
my $pw = enroll_password();
log_watch();
my $e = enroll($K[0], password => $pw, path => $FLAKY, subject => [[O => $O], [CN => 'spool one']]);
my @log = log_lines(qr/SCEP0009[2-5]/);
reply_is($e, 3, undef, 'the CA is down: PENDING, not FAILURE');
logged(qr/SCEP00092: transaction \Q$e->{msg}{transid}\E: the CA \(provider flaky\) could not take the request \(NDES event 31\); kept in the spool after 1 attempt/,
       \@log, 'SCEP00092 says the request is kept');
is(spooled(), 1, 'one entry in the spool');
is(rows('spool one'), 0, 'nothing issued');

log_watch();
reply_is(poll($e, $K[0]), 3, undef, 'CertPoll while the CA is still down: PENDING');
logged(qr/SCEP00092: .*kept in the spool after 2 attempts/, [log_lines(qr/SCEP00092/)],
       'the poll tried again (2 attempts)');

ca('up');
reply_is(poll($e, $K[1]), 2, 4, 'CertPoll by another key: FAILURE badCertId (not retried for it)');
log_watch();
my $got = poll($e, $K[0]);
@log = log_lines(qr/SCEP0009[2-5]/);
reply_is($got, 0, undef, 'the CA is back: the next CertPoll gets the certificate');
logged(qr/SCEP00095: transaction \Q$e->{msg}{transid}\E: CertPoll for a spooled request: asking the CA again \(attempt 3\)/,
       \@log, 'SCEP00095: the poll asked the CA again');
my ($rc, $out) = run('openssl', 'verify', '-CAfile', enroll_ca(), $got->{cert} // '/nonexistent');
ok($rc == 0 && $out =~ /: OK/, 'the certificate verifies against the CA') or diag($out);
is(rows('spool one'), 1, 'one certificate recorded');
is(spooled(), 0, 'the spool is empty again');
my @s = submits($e->{msg}{transid});
is(scalar @s, 3, 'the CA was asked three times (two failed)');
like($s[-1] // '', qr/retry=1 lookup=0 answer=issued/, 'the last time as a retry (the provider is told)');
reply_is(poll($e, $K[0]), 0, undef, 'another CertPoll: SUCCESS again (from the CA, not the spool)');
is(rows('spool one'), 1, 'still one certificate');
my $other = enroll($K[2], password => $pw, subject => [[O => $O], [CN => 'spool thief']]);
reply_is($other, 2, 2, 'the password is spent now that the CA accepted');

# --- the password is not spent while the request waits ---

ca('down');
$pw = enroll_password();
$e = enroll($K[3], password => $pw, path => $FLAKY, subject => [[O => $O], [CN => 'spool two']]);
reply_is($e, 3, undef, 'a second request while the CA is down: PENDING');
$other = enroll($K[4], password => $pw, subject => [[O => $O], [CN => 'spool other']]);
reply_is($other, 0, undef, 'its password is not spent: another request may use it');
ca('up');
reply_is(poll($e, $K[3]), 2, 2, 'then the spooled request fails at its poll (password spent): FAILURE');
is(rows('spool two'), 0, 'no certificate for it: one password, one certificate');
is(spooled(), 0, 'the failed request left the spool');

# --- the spool survives a full restart ---
# (A renewal: it needs no password.  A first enrollment's password must
# outlive the restart too, which takes SCEPPasswordPersistFile.)

{
    my $dev = enroll($K[5], password => enroll_password(), subject => [[O => $O], [CN => 'spool restart']]);
    reply_is($dev, 0, undef, 'a certificate to renew');
    my ($new) = new_keys('s56-renewed');
    ca('down');
    $e = enroll($new, msgtype => 17, path => $FLAKY, subject => [[O => $O], [CN => 'spool restart']],
                signer_cert => $dev->{cert}, signer_key => $K[5]);
    reply_is($e, 3, undef, 'a renewal while the CA is down: PENDING');
    my $server = Apache::Test::config()->server;
    $server->stop;
    ok($server->start, 'httpd stopped and started again');
    ca('up');
    $got = poll($e, $new);
    reply_is($got, 0, undef, 'after the restart, the poll gets the renewed certificate');
    is(rows('spool restart'), 2, 'the certificate and its renewal');
    is(spooled(), 0, 'the spool is empty again');
}

# --- strongSwan pki polls through an outage ---

{
    my $pki = which_client('pki');
    ok($pki, 'strongSwan pki is installed (strongswan-pki)');
    my ($key) = new_keys('s56-pki');
    my $cert = File::Spec->catfile(tmpdir(), 's56-pki.pem');
    my $err = File::Spec->catfile(tmpdir(), 's56-pki.err');
    my $ppw = enroll_password();
    ca('down');
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $cert;
        open STDERR, '>', $err;
        { no warnings 'exec';
          exec 'timeout', '90', $pki, '--scep', '-u', enroll_url($FLAKY), '-i', $key,
               '-d', "O=$O, CN=spool pki", '-p', $ppw, '--cacert-enc', ra_enc(),
               '--cacert-sig', ra_sign(), '--cacert', enroll_ca(), '--outform', 'pem',
               '--interval', '1', '--maxpolltime', '80'; }
        POSIX::_exit(127);
    }
    sleep 4;
    ok(waitpid($pid, POSIX::WNOHANG()) == 0, 'pki --scep keeps polling while the CA is down');
    ca('up');
    waitpid($pid, 0);
    is($? >> 8, 0, 'pki --scep gets its certificate once the CA is back') or diag(slurp($err));
    ($rc, $out) = run('openssl', 'verify', '-CAfile', enroll_ca(), $cert);
    ok($rc == 0 && $out =~ /: OK/, 'pki: the certificate verifies') or diag($out);
    is(rows('spool pki'), 1, 'pki: one certificate');
}

ca('up');
done_testing();
