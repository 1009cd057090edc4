# Licensed under the Apache License, Version 2.0; see LICENSE.
# Renewal through the embedded CA: a device signs with the certificate it
# holds instead of a challenge password.  strongSwan pki --scep sends a
# RenewalReq (17), certmonger's rekey and Cisco-style devices a PKCSReq
# (19) signed by the current certificate (made here by
# t/tools/scepreq.c).  A renewal logs SCEP00087 and marks the renewed
# certificate superseded in the database; a refused one (SHA-1, a
# foreign, expired, unknown or revoked signer, changed names) gets
# FAILURE badRequest and SCEP00088 with the reason; a PKCSReq whose
# signer fails the checks is a first enrollment again (SCEP00089) and
# needs a password.  SCEPRenewalSubjectNameMatch Off (/enroll/rename/)
# lets a renewal change the subject.  The scep_enroll virtual host of
# t/conf/extra.conf.in.
# A renewal keeping the key (pki with the old key, certmonger's resubmit)
# carries the transaction ID and key of the certificate it renews, both
# clients deriving the ID from the key: it must still get a new one.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use POSIX qw(strftime);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT serial_of logged reply_is);

admins_file();

my $O = 'mod_scep TEST ONLY';
my $URL = enroll_url($ENROLL_SCEP);
my $RENAME = enroll_url('/enroll/rename/pkiclient.exe');
my $d = tempdir('renew-XXXXXX', DIR => tmpdir());

# The packages are installed by scripts/install-deps: a missing client
# is a failure, not a reason to skip.
my $pki = which_client('pki');
my $certmonger = which_client('certmonger');
my $getcert = which_client('getcert');
ok($pki, 'strongSwan pki is installed (strongswan-pki)');
ok($certmonger && $getcert, 'certmonger and getcert are installed (certmonger)');

my @K = new_keys(map { "r53-$_" } 1 .. 26);
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

# --- helpers ---

# pki_scep OUT, OPTIONS: pki --scep writing the certificate to OUT;
# (exit status, stderr, transaction ID).
#   key => new key, dn => subject, password => challenge,
#   cert => current certificate, oldkey => its key (a renewal),
#   digest => sha256|sha1..., url => (default /enroll/scep/)
sub pki_scep {
    my ($out, %o) = @_;
    my @cmd = ('timeout', '60', $pki, '--scep', '-u', $o{url} // $URL,
               '-i', $o{key}, '-d', $o{dn}, '--cacert-enc', ra_enc(),
               '--cacert-sig', ra_sign(), '--cacert', enroll_ca(),
               '--outform', 'pem');
    push @cmd, '-p', $o{password} if defined $o{password};
    push @cmd, '--cert', $o{cert}, '--key', $o{oldkey} if $o{cert};
    push @cmd, '--digest', $o{digest} if $o{digest};
    my ($rc, $err) = run_out($out, @cmd);
    my ($tid) = $err =~ /transaction ID: (\S+)/;
    return ($rc, $err, $tid // 'no transaction ID');
}

# rows_for TRANSID: the database rows of a transaction.
sub rows_for {
    my $h = uc sha256_hex(shift);
    return db_query("SELECT serial FROM scep_issued WHERE upper(transid) = '$h'");
}

# row SERIAL: (superseded_by, revoked, reason, requester) of a
# certificate in the database, or () when it is not there.
sub row {
    my $s = serial_key(shift);
    my ($r) = db_query("SELECT COALESCE(superseded_by, ''), COALESCE(revoked, ''), "
                       . "COALESCE(reason, ''), COALESCE(requester, '') FROM scep_issued "
                       . "WHERE ltrim(serial, '0') = '$s'");
    return $r ? @$r : ();
}

# A small openssl CA for certificates mod_scep did not issue: under
# enroll-ca (its key is in the test PKI) or foreign-ca, valid when told.
my $cadir = "$d/openssl-ca";
mkdir $cadir or die "mkdir $cadir: $!";
spew("$cadir/index.txt", '');
my $cacnf = spew("$cadir/openssl.cnf", <<CNF);
[ ca ]
default_ca = test_ca
[ test_ca ]
database        = $cadir/index.txt
new_certs_dir   = $cadir
serial          = $cadir/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
email_in_dn     = no
preserve        = yes
copy_extensions = none
[ policy_any ]
organizationName = optional
commonName       = supplied
[ leaf ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
CNF

# openssl_cert NAME, ISSUER, KEY, CN, START_DAYS, END_DAYS: a certificate
# "O=mod_scep TEST ONLY, CN=CN" for KEY issued by ISSUER (a test PKI
# name) with openssl ca; returns (PEM file, serial as mod_scep writes it).
sub openssl_cert {
    my ($name, $issuer, $key, $cn, $start, $end) = @_;
    my $serial = sprintf '%02X', 0x10 + int rand 0x60;
    $serial .= sprintf '%02X', int rand 256 for 1 .. 15;
    spew("$cadir/serial", "$serial\n");
    my $when = sub { strftime('%Y%m%d%H%M%SZ', gmtime(time + 86400 * shift)) };
    my ($rc, $out) = run('openssl', 'req', '-new', '-key', $key, '-subj', "/O=$O/CN=$cn",
                         '-out', "$d/$name.csr");
    die "openssl req: $out" if $rc;
    ($rc, $out) = run('openssl', 'ca', '-batch', '-config', $cacnf, '-notext',
                      '-cert', pki("$issuer.pem"), '-keyfile', pki("$issuer.key"),
                      '-extensions', 'leaf', '-startdate', $when->($start),
                      '-enddate', $when->($end), '-in', "$d/$name.csr",
                      '-out', "$d/$name.pem");
    die "openssl ca: $out" if $rc;
    return ("$d/$name.pem", $serial);
}

# known_cert NAME, KEY, CN, START_DAYS, END_DAYS: a certificate of the
# CA made by openssl ca with the validity asked for, recorded in the
# database as the embedded CA records its own.
sub known_cert {
    my ($name, $key, $cn, $start, $end) = @_;
    my ($file, $serial) = openssl_cert($name, 'enroll-ca', $key, $cn, $start, $end);
    my $pem = slurp($file);
    my ($t, $k) = (sha256_hex("$name-$$-" . rand), sha256_hex("$name-key-$$-" . rand));
    db_query("INSERT INTO scep_issued (serial, transid, keyid, subject, template, requester, "
             . "client, issued, not_after, cert) VALUES ('$serial', '$t', '$k', "
             . "'CN=$cn,O=$O', 'IPSECIntermediateOffline', '', '127.0.0.1', "
             . "'2000-01-01T00:00:00Z', '2000-12-31T00:00:00Z', '$pem')");
    return $file;
}

# --- strongSwan pki: RenewalReq (17) ---

my ($old, $old_serial, $new, $new_serial);
{
    my $pw = enroll_password();
    $old = "$d/pki-old.pem";
    my ($rc, $err) = pki_scep($old, key => $K[0], dn => "O=$O, CN=renew pki", password => $pw);
    is($rc, 0, 'pki --scep with a password: the certificate to renew') or diag($err);
    $old_serial = serial_of($old);

    $new = "$d/pki-new.pem";
    log_watch();
    ($rc, $err, my $tid) = pki_scep($new, key => $K[1], dn => "O=$O, CN=renew pki",
                                    cert => $old, oldkey => $K[0]);
    my @log = log_lines(qr/SCEP00076.*\Q$tid\E/);
    is($rc, 0, 'pki --scep --cert OLD --key OLDKEY, a new key, no password: succeeds')
        or diag($err, @log);
    my $info = cert_ok($new, 'renewal: the new certificate', key => $K[1],
                       subject => "CN=renew pki,O=$O");
    $new_serial = serial_of($new);
    isnt($new_serial, $old_serial, 'renewal: a new serial');
    logged(qr/SCEP00087: transaction \Q$tid\E: renewal of serial 0*\Q$old_serial\E \(CN=renew pki,O=\Q$O\E\)/,
           \@log, 'renewal: SCEP00087 names the serial renewed');
    logged(qr/SCEP00076: issued: transaction \Q$tid\E, .*serial 0*\Q$new_serial\E, .*password from -,/,
           \@log, 'renewal: the audit line SCEP00076, no password');
    ok(!(grep { /SCEP0007[23]|SCEP00088/ } @log), 'renewal: no password was asked for')
        or diag(@log);
    my ($sup, $rev) = row($old_serial);
    is(serial_key($sup), $new_serial, 'database: the old certificate is superseded by the new one');
    is($rev, '', 'database: the old certificate is not revoked');
    my @new_row = row($new_serial);
    ok(@new_row, 'database: the new certificate is recorded');
    is($new_row[3] // 'none', '', 'database: the new certificate has no requester (no password)');
}

# The same renewal again (pki derives the transaction ID from the new
# key): the same certificate, nothing more recorded.
{
    my $again = "$d/pki-new-again.pem";
    my ($rc, $err, $tid) = pki_scep($again, key => $K[1], dn => "O=$O, CN=renew pki",
                                    cert => $old, oldkey => $K[0]);
    is($rc, 0, 'the renewal resent: succeeds') or diag($err);
    is(serial_of($again), $new_serial, 'the renewal resent: the same certificate');
    is(scalar rows_for($tid), 1, 'the renewal resent: one database row for the transaction');
}

# A renewal keeping the key.  pki derives the transaction ID from the
# key, so it sends the transaction ID and key of the certificate it
# renews.
{
    my $pw = enroll_password();
    my $first = "$d/pki-samekey-1.pem";
    my ($rc, $err) = pki_scep($first, key => $K[17], dn => "O=$O, CN=renew same key", password => $pw);
    is($rc, 0, 'pki --scep: a certificate to renew with the same key') or diag($err);
    my $second = "$d/pki-samekey-2.pem";
    log_watch();
    ($rc, $err, my $tid) = pki_scep($second, key => $K[17], dn => "O=$O, CN=renew same key",
                                    cert => $first, oldkey => $K[17]);
    my @log = log_lines(qr/SCEP00076.*\Q$tid\E/);
    is($rc, 0, 'pki renewal keeping the key: succeeds') or diag($err);
    logged(qr/SCEP00087: transaction \Q$tid\E: renewal of serial 0*\Q${\ serial_of($first)}\E /, \@log,
           'pki renewal keeping the key: accepted as a renewal (SCEP00087)');
    {
        isnt(serial_of($second), serial_of($first), 'pki renewal keeping the key: a new certificate');
    }
}

# Refused RenewalReqs: FAILURE badRequest, SCEP00088 with the reason,
# nothing issued.
sub pki_refused {
    my ($what, $re, %o) = @_;
    my $out = "$d/refused-" . ($o{tag} // 'x') . '.pem';
    log_watch();
    my ($rc, $err, $tid) = pki_scep($out, %o);
    my @log = log_lines(qr/SCEP00088/);
    isnt($rc, 0, "$what: pki fails");
    like($err, qr/badRequest/, "$what: FAILURE badRequest");
    logged(qr/SCEP00088: transaction \Q$tid\E: renewal refused: $re/, \@log,
           "$what: SCEP00088 says why");
    ok(!-s $out, "$what: no certificate");
    is(scalar rows_for($tid), 0, "$what: nothing recorded");
}

pki_refused('renewal signed with SHA-1 (pki --digest sha1)',
            qr/a renewal request must be signed with SHA-2/, tag => 'sha1',
            key => $K[2], dn => "O=$O, CN=renew pki", cert => $old, oldkey => $K[0],
            digest => 'sha1');
pki_refused('renewal asking for another subject',
            qr/the request's subject differs from the certificate's/, tag => 'subject',
            key => $K[3], dn => "O=$O, CN=renew pki renamed", cert => $old, oldkey => $K[0]);

# Where SCEPRenewalSubjectNameMatch is Off the subject may change; the
# renewed certificate renews in turn.
{
    my $out = "$d/pki-renamed.pem";
    log_watch();
    my ($rc, $err, $tid) = pki_scep($out, url => $RENAME, key => $K[3],
                                    dn => "O=$O, CN=renew pki renamed",
                                    cert => $new, oldkey => $K[1]);
    my @log = log_lines(qr/SCEP00076.*\Q$tid\E/);
    is($rc, 0, 'SCEPRenewalSubjectNameMatch Off: a renewal with another subject succeeds')
        or diag($err, @log);
    cert_ok($out, 'SCEPRenewalSubjectNameMatch Off: the certificate', key => $K[3],
            subject => "CN=renew pki renamed,O=$O");
    logged(qr/SCEP00087: transaction \Q$tid\E: renewal of serial 0*\Q$new_serial\E /, \@log,
           'SCEPRenewalSubjectNameMatch Off: SCEP00087 names the renewed certificate');
    my ($sup) = row($new_serial);
    is(serial_key($sup), serial_of($out),
       'SCEPRenewalSubjectNameMatch Off: the renewed certificate is superseded by it');
}

# A certificate of another CA (foreign-ca), same names.
my ($foreign) = openssl_cert('foreign', 'foreign-ca', $K[4], 'renew foreign', -1, 30);
pki_refused('renewal signed by a certificate of another CA',
            qr/the signer certificate is not a valid certificate of this CA \(foreign or expired\)/,
            tag => 'foreign', key => $K[5], dn => "O=$O, CN=renew foreign",
            cert => $foreign, oldkey => $K[4]);

# --- refused RenewalReqs made by scepreq ---

# renewal_req SIGNER_CERT, SIGNER_KEY, NEW_KEY, CN, OPTIONS: a RenewalReq
# (or msgtype => 19) for O=mod_scep TEST ONLY, CN=CN signed by SIGNER.
sub renewal_req {
    my ($cert, $key, $newkey, $cn, %o) = @_;
    return enroll($newkey, subject => [[O => $O], [CN => $cn]], msgtype => 17,
                  signer_cert => $cert, signer_key => $key, %o);
}

sub scepreq_refused {
    my ($what, $re, @args) = @_;
    log_watch();
    my $e = renewal_req(@args);
    my @log = log_lines(qr/SCEP00088.*\Q$e->{msg}{transid}\E/);
    reply_is($e, 2, 2, "$what: FAILURE badRequest");
    logged(qr/SCEP00088: transaction \Q$e->{msg}{transid}\E: renewal refused: $re/, \@log,
           "$what: SCEP00088 says why");
    is(scalar rows_for($e->{msg}{transid}), 0, "$what: nothing recorded");
    return $e;
}

# An expired certificate the CA issued and knows (recorded as the
# embedded CA records its certificates).
{
    my $expired = known_cert('expired', $K[6], 'renew expired', -400, -1);
    my @r = row(serial_of($expired));
    ok(@r && $r[1] eq '', 'an expired certificate of the CA, recorded in its database, not revoked');
    scepreq_refused('RenewalReq signed by an expired certificate of the CA',
                    qr/the signer certificate is not a valid certificate of this CA \(foreign or expired\)/,
                    $expired, $K[6], $K[7], 'renew expired');
}

# A current certificate of the CA that it did not issue (none of its
# records): its revocation status cannot be told.
my ($unknown) = openssl_cert('unknown', 'enroll-ca', $K[8], 'renew unknown', -1, 30);
scepreq_refused('RenewalReq signed by a certificate of the CA it has no record of',
                qr/the CA does not know the signer certificate, so it cannot tell whether it is revoked/,
                $unknown, $K[8], $K[9], 'renew unknown');

# A revoked certificate (scripts/scepadm revoke).
my ($revoked, $revoked_serial);
{
    my $e = enroll($K[10], password => enroll_password(), subject => [[O => $O], [CN => 'renew revoked']]);
    reply_is($e, 0, undef, 'the certificate to revoke: SUCCESS');
    $revoked = $e->{cert};
    $revoked_serial = serial_of($revoked);
    my ($rc, $out, $err) = scepadm('revoke', $revoked_serial, '--reason', 'keyCompromise');
    is($rc, 0, 'scepadm revoke SERIAL --reason keyCompromise') or diag($out, $err);
    scepreq_refused('RenewalReq signed by a revoked certificate',
                    qr/the signer certificate is revoked/,
                    $revoked, $K[10], $K[11], 'renew revoked');
    # pki as well
    pki_refused('pki renewal with a revoked certificate', qr/the signer certificate is revoked/,
                tag => 'revoked', key => $K[11], dn => "O=$O, CN=renew revoked",
                cert => $revoked, oldkey => $K[10]);
}

# A RenewalReq needs a certificate of the CA, a password does not make up
# for one: signed by a device's self-signed certificate, it is refused
# and the password is not spent.
{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[12], password => $pw, msgtype => 17,
                   subject => [[O => $O], [CN => 'renew self-signed']]);
    my @log = log_lines(qr/SCEP00088/);
    reply_is($e, 2, 2, 'RenewalReq signed by a self-signed certificate, with a password: FAILURE badRequest');
    logged(qr/SCEP00088: transaction \Q$e->{msg}{transid}\E: renewal refused: .*foreign or expired/,
           \@log, 'RenewalReq signed by a self-signed certificate: SCEP00088');
    $e = enroll($K[12], password => $pw, subject => [[O => $O], [CN => 'renew self-signed']]);
    reply_is($e, 0, undef, 'RenewalReq signed by a self-signed certificate: its password was not spent');
}

# subjectAltName: a renewal asking for the names the certificate has
# renews; one asking for more is refused.
{
    my $alt = "[alt]\nDNS.1 = renew-san.example\nIP.1 = 192.0.2.7\n"
            . "email.1 = device\@renew-san.example\nURI.1 = urn:example:renew-san\n";
    my @san = (ext => ['subjectAltName = @alt'], sections => $alt);
    my $e = enroll($K[18], password => enroll_password(),
                   subject => [[O => $O], [CN => 'renew san']], @san);
    reply_is($e, 0, undef, 'a certificate with DNS, IP, e-mail and URI names: SUCCESS');
    log_watch();
    my $r = renewal_req($e->{cert}, $K[18], $K[19], 'renew san', @san);
    my @log = log_lines(qr/SCEP00087/);
    reply_is($r, 0, undef, 'RenewalReq with the same subjectAltName: SUCCESS');
    logged(qr/SCEP00087: transaction \Q$r->{msg}{transid}\E: renewal of serial/, \@log,
           'RenewalReq with the same subjectAltName: SCEP00087');
    my ($rc, $out) = run('openssl', 'x509', '-in', $r->{cert} // '/nonexistent', '-noout',
                         '-ext', 'subjectAltName');
    like($out, qr/DNS:renew-san\.example, IP Address:192\.0\.2\.7, email:device\@renew-san\.example, URI:urn:example:renew-san/,
         'RenewalReq with the same subjectAltName: the names in the new certificate');
    scepreq_refused('RenewalReq asking for another DNS name too',
                    qr/the request's subjectAltName differs from the certificate's/,
                    $e->{cert}, $K[18], $K[19], 'renew san', ext => ['subjectAltName = @alt'],
                    sections => "$alt" . "DNS.2 = more.renew-san.example\n");
}

# --- PKCSReq (19) signed by the current certificate ---

{
    my $e = enroll($K[13], password => enroll_password(), subject => [[O => $O], [CN => 'renew cisco']]);
    reply_is($e, 0, undef, 'the certificate to renew with a PKCSReq: SUCCESS');
    my $cur = $e->{cert};
    my $cur_serial = serial_of($cur);

    log_watch();
    $e = renewal_req($cur, $K[13], $K[14], 'renew cisco', msgtype => 19);
    my $tid = $e->{msg}{transid};
    my @log = log_lines(qr/SCEP00076.*\Q$tid\E/);
    reply_is($e, 0, undef, 'PKCSReq signed by the current certificate, no password: SUCCESS');
    is($e->{rep}{certs}, 2, 'the reply (encrypted to the current certificate) holds the certificate and the CA');
    cert_ok($e->{cert}, 'PKCSReq renewal: the new certificate', key => $K[14],
            subject => "CN=renew cisco,O=$O");
    logged(qr/SCEP00087: transaction \Q$tid\E: renewal of serial 0*\Q$cur_serial\E /, \@log,
           'PKCSReq renewal: SCEP00087 names the serial renewed');
    my ($sup) = row($cur_serial);
    is(serial_key($sup), serial_of($e->{cert}), 'PKCSReq renewal: database: superseded by the new certificate');

    # signed with SHA-1, no password: refused as a renewal
    log_watch();
    $e = renewal_req($cur, $K[13], $K[15], 'renew cisco', msgtype => 19, digest => 'sha1');
    @log = log_lines(qr/SCEP00088/);
    reply_is($e, 2, 2, 'PKCSReq signed by the current certificate with SHA-1, no password: FAILURE badRequest');
    logged(qr/SCEP00088: transaction \Q$e->{msg}{transid}\E: renewal refused: a renewal request must be signed with SHA-2/,
           \@log, 'PKCSReq with SHA-1: SCEP00088');
}

# Signed by the revoked certificate: without a password refused, with a
# valid one a first enrollment (SCEP00089), nothing superseded.
{
    log_watch();
    my $e = renewal_req($revoked, $K[10], $K[15], 'renew revoked', msgtype => 19);
    my @log = log_lines(qr/SCEP00088/);
    reply_is($e, 2, 2, 'PKCSReq signed by a revoked certificate, no password: FAILURE badRequest');
    logged(qr/SCEP00088: transaction \Q$e->{msg}{transid}\E: renewal refused: the signer certificate is revoked/,
           \@log, 'PKCSReq signed by a revoked certificate: SCEP00088');

    log_watch();
    $e = renewal_req($revoked, $K[10], $K[15], 'renew revoked', msgtype => 19,
                     password => enroll_password());
    my $tid = $e->{msg}{transid};
    @log = log_lines(qr/SCEP00076.*\Q$tid\E/);
    reply_is($e, 0, undef, 'PKCSReq signed by a revoked certificate, with a valid password: SUCCESS');
    logged(qr/SCEP00089: transaction \Q$tid\E: not a renewal \(the signer certificate is revoked\); checking its challenge password/,
           \@log, 'a first enrollment: SCEP00089');
    logged(qr/SCEP00076: issued: transaction \Q$tid\E, .*password from alice,/, \@log,
           'a first enrollment: the password was checked (audit: from alice)');
    ok(!(grep { /SCEP00087/ && /\Q$tid\E/ } @log), 'a first enrollment: no SCEP00087');
    my ($sup, $rev, $reason) = row($revoked_serial);
    is($sup, '', 'the revoked certificate is not superseded');
    is($reason, 'keyCompromise', 'and stays revoked (keyCompromise)');
    cert_ok($e->{cert}, 'a first enrollment: the certificate', key => $K[15],
            subject => "CN=renew revoked,O=$O");
}

# Signed by the certificate the CA has no record of, with a password.
{
    log_watch();
    my $e = renewal_req($unknown, $K[8], $K[16], 'renew unknown', msgtype => 19,
                        password => enroll_password());
    my @log = log_lines(qr/SCEP00076.*\Q$e->{msg}{transid}\E/);
    reply_is($e, 0, undef, 'PKCSReq signed by an unknown certificate of the CA, with a password: SUCCESS');
    logged(qr/SCEP00089: transaction \Q$e->{msg}{transid}\E: not a renewal \(the CA does not know/, \@log,
           'an unknown certificate of the CA: SCEP00089');
}

# Signed by a certificate of another CA: no renewal at all, an ordinary
# PKCSReq without a password (NDES event 28).
{
    log_watch();
    my $e = renewal_req($foreign, $K[4], $K[16], 'renew foreign', msgtype => 19);
    my @log = log_lines(qr/SCEP00072/);
    reply_is($e, 2, 2, 'PKCSReq signed by a certificate of another CA, no password: FAILURE badRequest');
    logged(qr/SCEP00072: transaction \Q$e->{msg}{transid}\E: no challenge password/, \@log,
           'a certificate of another CA: treated as a first enrollment without password (SCEP00072)');
    ok(!(grep { /SCEP0008[789]/ } @log), 'a certificate of another CA: not taken for a renewal') or diag(@log);
}

# --- certmonger: a private daemon; rekey, then resubmit ---

SKIP: {
    skip 'no certmonger', 1 unless $certmonger && $getcert;
    my $c = tempdir('certmonger-XXXXXX', DIR => tmpdir());
    mkdir "$c/$_" or die "mkdir $c/$_: $!" for qw(requests cas tmp local config);
    my $pw = enroll_password();
    my $subject = "CN=certmonger renew,O=$O";
    spew("$c/run.sh", <<SH);
getcert add-scep-ca -c modscep -u '$URL' || exit 10
getcert request -c modscep -I cm53 -k '$c/key.pem' -f '$c/cert.pem' -N '$subject' -L '$pw' -w -v || exit 11
cp '$c/cert.pem' '$c/cert-1.pem'; cp '$c/key.pem' '$c/key-1.pem'
getcert rekey -i cm53 -w -v || exit 12
cp '$c/cert.pem' '$c/cert-2.pem'; cp '$c/key.pem' '$c/key-2.pem'
getcert resubmit -i cm53 -w -v || exit 13
cp '$c/cert.pem' '$c/cert-3.pem'
getcert list
SH
    local %ENV = (%ENV,
        CERTMONGER_REQUESTS_DIR => "$c/requests", CERTMONGER_CAS_DIR => "$c/cas",
        CERTMONGER_TMPDIR => "$c/tmp", CERTMONGER_LOCAL_CA_DIR => "$c/local",
        CERTMONGER_CONFIG_DIR => "$c/config", CERTMONGER_SYSTEM_LOCK_FILE => "$c/lock");
    log_watch();
    my ($rc, $out) = run('timeout', '120', $certmonger, '-n', '-L', '-P', "$c/socket",
                         '-c', "sh $c/run.sh");
    is($rc, 0, 'certmonger: request, rekey and resubmit succeed') or diag($out);
    my @s = map { serial_of("$c/cert-$_.pem") } 1 .. 3;
    my @log = log_lines(qr/SCEP00087.*\Q$s[0]\E/);
    my $first = cert_ok("$c/cert-1.pem", 'certmonger: the first certificate', key => "$c/key-1.pem");
    like($first ? $first->{subject} : '', qr/^(CN=certmonger renew,O=\Q$O\E|O=\Q$O\E,CN=certmonger renew)$/,
         'certmonger: the subject asked for');
    # getcert rekey: a new key, a PKCSReq signed by the current certificate
    my $second = cert_ok("$c/cert-2.pem", 'certmonger rekey: the renewed certificate',
                         key => "$c/key-2.pem");
    is($second && $second->{subject}, $first && $first->{subject}, 'certmonger rekey: the same subject');
    isnt(slurp("$c/key-2.pem") // 'a', slurp("$c/key-1.pem") // 'b', 'certmonger rekey: a new key');
    isnt($s[1], $s[0], 'certmonger rekey: a new certificate');
    logged(qr/SCEP00087: transaction \S+: renewal of serial 0*\Q$s[0]\E \(.*CN=certmonger renew.*\)/,
           \@log, 'certmonger rekey: a renewal without password (SCEP00087)');
    my ($sup) = row($s[0]);
    is(serial_key($sup), $s[1], 'certmonger rekey: database: superseded by the new certificate');
    # getcert resubmit: the same key (certmonger's renewal unless it is
    # told to rekey), signed by the current certificate, and the same
    # transaction ID (certmonger derives it from the key)
    logged(qr/SCEP00087: transaction \S+: renewal of serial 0*\Q$s[1]\E /, \@log,
           'certmonger resubmit (same key): accepted as a renewal (SCEP00087)');
    {
        isnt($s[2], $s[1], 'certmonger resubmit (same key): a new certificate');
        my ($sup2) = row($s[1]);
        is(serial_key($sup2), $s[2], 'certmonger resubmit (same key): the current certificate is superseded');
    }
}

# --- SCEPRenewalWindow and SCEPRenewalRevokeOld ---


{
    my $young = known_cert('win-young', $K[20], 'renew window', -1, 30);
    my $old = known_cert('win-old', $K[21], 'renew window', -20, 10);
    my $long = known_cert('win-long', $K[22], 'renew window', -1, 60);
    my $pct = '/enroll/window-pct/pkiclient.exe';
    my $days = '/enroll/window-days/pkiclient.exe';
    scepreq_refused('SCEPRenewalWindow 50%: a certificate with 97% of its life left',
                    qr/too early: the certificate has (29|30) days left; SCEPRenewalWindow accepts a renewal from 50% of its life left/,
                    $young, $K[20], $K[23], 'renew window', path => $pct);
    my $e = renewal_req($old, $K[21], $K[23], 'renew window', path => $pct);
    reply_is($e, 0, undef, 'SCEPRenewalWindow 50%: a certificate with a third of its life left renews');
    scepreq_refused('SCEPRenewalWindow 30d: a certificate with 60 days left',
                    qr/too early: the certificate has (59|60) days left; SCEPRenewalWindow accepts a renewal from 30 days before it expires/,
                    $long, $K[22], $K[23], 'renew window', path => $days);
    $e = renewal_req($young, $K[20], $K[23], 'renew window', path => $days);
    reply_is($e, 0, undef, 'SCEPRenewalWindow 30d: a certificate with 30 days left renews');
    $e = renewal_req($young, $K[20], $K[23], 'renew window');
    reply_is($e, 0, undef, 'without SCEPRenewalWindow any time is right (NDES)');
}

{
    my $dev = enroll($K[24], password => enroll_password(), subject => [[O => $O], [CN => 'renew revoke old']]);
    reply_is($dev, 0, undef, 'a certificate to renew with SCEPRenewalRevokeOld On');
    log_watch();
    my $e = renewal_req($dev->{cert}, $K[24], $K[25], 'renew revoke old', path => '/enroll/revoke-old/pkiclient.exe');
    my @log = log_lines(qr/SCEP00110/);
    reply_is($e, 0, undef, 'SCEPRenewalRevokeOld On: the renewal succeeds');
    my ($sup, $rev, $reason) = row(serial_of($dev->{cert}));
    is(serial_key($sup), serial_of($e->{cert}), 'SCEPRenewalRevokeOld On: the old certificate is superseded');
    like($rev, qr/^\d{14}Z$/, 'SCEPRenewalRevokeOld On: and revoked');
    is($reason, 'superseded', 'SCEPRenewalRevokeOld On: reason superseded');
    logged(qr/SCEP00110: local CA: serial 0*\Q${\ serial_of($dev->{cert})}\E revoked \(superseded/, \@log,
           'SCEPRenewalRevokeOld On: SCEP00110');
    my ($r2, $rev2) = row(serial_of($e->{cert}));
    is($rev2, '', 'the new certificate is not revoked');
}

done_testing();
