# Licensed under the Apache License, Version 2.0; see LICENSE.
# NDES's single password (SCEPChallengeProvider single): one password
# per service, the same for every administrator, never expiring, usable
# any number of times, kept in SCEPSinglePasswordFile encrypted to the RA
# encryption certificate; deleting the file changes it.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;

admins_file();

my $ADMIN = '/single/admin/';
my $RACE = '/single/race/';
my $file = File::Spec->catfile(Apache::Test::vars('t_state'), 'single-password.der');
my (undef, $md5, $sha256) = thumbprints(pki('ca.pem'));

# Start from no file: the first request makes it.
unlink $file;
ok(!-e $file, 'no single password file yet');

log_watch();
my ($res, $j) = admin_json($ADMIN, 'alice');
is($res->code, 201, 'alice: 201') or diag($res->as_string);
$j //= {};
my $pw = $j->{password} // '';
like($pw, qr/^[0-9A-F]{16}$/, 'a password of 16 hex characters');
ok(exists $j->{expires} && !defined $j->{expires}, 'expires: null (never)')
    or diag($res->content);
like($res->content, qr/"expires":null/, 'literally null in the JSON');
is($j->{ca_thumbprint_sha256}, $sha256, 'the CA thumbprint (SHA-256)');
is($j->{ca_thumbprint_md5}, $md5, 'the CA thumbprint (MD5)');
my @log = log_lines(qr/SCEP00054/);
ok((grep { /SCEP00041/ } @log), 'SCEP00041: the single password was created') or diag(@log);
ok((grep { /SCEP00054/ && /issued to alice\b/ && /provider single/ } @log),
   'audit line (SCEP00054) for alice, provider single') or diag(@log);
ok(!(grep { /\Q$pw\E/i } @log), 'the password is nowhere in the error_log');

my ($res2, $j2) = admin_json($ADMIN, 'bob');
is($res2->code, 201, 'bob: 201');
is($j2 && $j2->{password}, $pw, 'bob gets the same password as alice');

$res = admin_request('GET', $ADMIN, 'bob');
my ($text, $bom) = html_text($res);
is($res->code, 200, 'the HTML page: 200');
ok($bom, 'the HTML page: UTF-16LE');
my ($shown) = $text =~ /The enrollment challenge password is: <B> ([0-9A-F]+) <\/B>/;
is($shown, $pw, 'the HTML page shows the same password');
like($text, qr/This password does not expire\./, 'the page says it does not expire');
unlike($text, qr/can be used only once/, 'the page does not say it is for one use');

$res = admin_request('GET', $ADMIN, 'mallory');
is($res->code, 403, 'mallory: 403');
unlike($res->content, qr/\Q$pw\E/, 'mallory: no password');

# The file: private, encrypted to the RA encryption certificate.
ok(-f $file, 'the single password file exists');
is((stat $file)[2] & 07777, 0600, 'its mode is 0600');
my $der = slurp($file) // '';
unlike($der, qr/\Q$pw\E/i, 'it does not hold the password in clear');
{
    my ($rc, $out) = run('openssl', 'cms', '-cmsout', '-inform', 'DER', '-in', $file, '-print');
    is($rc, 0, 'openssl reads it as CMS') or diag($out);
    like($out, qr/contentType: pkcs7-envelopedData/, 'a CMS EnvelopedData') or diag($out);
    my $plain = File::Spec->catfile(tmpdir(), 'single.txt');
    ($rc, $out) = run('openssl', 'cms', '-decrypt', '-inform', 'DER', '-in', $file,
                      '-recip', pki('ra-enc.pem'), '-inkey', pki('ra-enc.key'),
                      '-out', $plain);
    is($rc, 0, 'the RA encryption key opens it') or diag($out);
    is(slurp($plain), $pw, 'it holds the password');
    ($rc, $out) = run('openssl', 'cms', '-decrypt', '-inform', 'DER', '-in', $file,
                      '-recip', pki('ra-sign.pem'), '-inkey', pki('ra-sign.key'),
                      '-out', $plain);
    isnt($rc, 0, 'the RA signing key does not');
}

# Reusable: any number of requests, any KeyUsage, concurrently too.
is(race($RACE, $pw, 160)->{word}, 'COMMITTED', 'accepted');
is(race($RACE, $pw, 160)->{word}, 'COMMITTED', 'accepted again');
is(race($RACE, $pw, 128)->{word}, 'COMMITTED', 'accepted for signature');
is(race($RACE, $pw, 32)->{word}, 'COMMITTED', 'accepted for encryption');
is(race($RACE, $pw, -1)->{word}, 'COMMITTED', 'accepted without KeyUsage');
is(race($RACE, lc $pw, 160)->{word}, 'COMMITTED', 'accepted in lower case');
{
    my @r = parallel_get(map { race_url($RACE, $pw, 160) } 1 .. 10);
    is(scalar(grep { $_->{word} eq 'COMMITTED' } @r), 10, '10 requests at once: all accepted')
        or diag(join ' ', map { $_->{word} } @r);
}
is(race($RACE, '0123456789ABCDEF', 160)->{word}, 'REJECT', 'a wrong password is refused');
is(race($RACE, substr($pw, 0, 15), 160)->{word}, 'REJECT', 'a truncated one is refused');
is(race('/pw/race/', $pw, 160)->{word}, 'REJECT', 'not valid as a one-time password');
{
    my ($r, $one) = admin_json('/pw/admin/', 'alice');
    is(race($RACE, $one ? $one->{password} : 'x', 160)->{word}, 'REJECT',
       'a one-time password is not the single password');
}
($res2, $j2) = admin_json($ADMIN, 'alice');
is($j2 && $j2->{password}, $pw, 'still the same password after use');

# Deleting the file changes the password.
unlink $file;
($res2, $j2) = admin_json($ADMIN, 'alice');
is($res2->code, 201, 'after deleting the file: 201');
my $new = $j2 ? $j2->{password} // '' : '';
like($new, qr/^[0-9A-F]{16}$/, 'after deleting the file: a password');
isnt($new, $pw, 'after deleting the file: a new password');
is(race($RACE, $pw, 160)->{word}, 'REJECT', 'the old password is refused');
is(race($RACE, $new, 160)->{word}, 'COMMITTED', 'the new one is accepted');
is((stat $file)[2] & 07777, 0600, 'the new file: mode 0600');

done_testing();
