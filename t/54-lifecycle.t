# Licensed under the Apache License, Version 2.0; see LICENSE.
# What the embedded CA answers from its records after issuing, and its
# command-line tool: CertPoll (20, IssuerAndSubject) for an issued
# transaction, GetCert (21, IssuerAndSerialNumber) of an issued serial,
# GetCRL (22) with the CRL in the reply's degenerate SignedData, signed
# by the CA, listing what scripts/scepadm revoked (SCEPLocalCACRLValidity
# days between its updates); FAILURE badCertId for what the CA does not
# know; scripts/scepadm list, show and revoke.  Requests made by the
# test-only client t/tools/scepreq.c.  The scep_enroll virtual host of
# t/conf/extra.conf.in.
# A CertPoll for a renewal may be signed by the renewed certificate, as
# the renewal was (strongSwan and certmonger do so).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use Time::Local qw(timegm);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT serial_of logged reply_is);

admins_file();

my $O = 'mod_scep TEST ONLY';
my @K = new_keys(map { "l54-$_" } 1 .. 6);
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

# --- helpers ---

sub rows_for {
    my $h = uc sha256_hex(shift);
    return db_query("SELECT serial FROM scep_issued WHERE upper(transid) = '$h'");
}

# An enrolled device: (enroll result, certificate file, serial).
sub device {
    my ($key, $cn) = @_;
    my $e = enroll($key, password => enroll_password(), subject => [[O => $O], [CN => $cn]]);
    reply_is($e, 0, undef, "enrollment of '$cn': SUCCESS");
    return ($e, $e->{cert}, serial_of($e->{cert}));
}

# poll KEY, OPTIONS: CertPoll for a transaction.
#   transid => ID, subject_from => certificate or CSR, csr => the
#   request (names the self-signed signer), signer_cert/signer_key
sub poll {
    my ($key, %o) = @_;
    return enroll($key, msgtype => 20, transid => $o{transid},
                  content => iasubj_file(subject_from => $o{subject_from}),
                  map { exists $o{$_} ? ($_ => $o{$_}) : () } qw(csr signer_cert signer_key path));
}

# get KEY, CERT, MSGTYPE, OPTIONS: GetCert (21) or GetCRL (22) signed by
# the device's certificate CERT (KEY).  OPTIONS: those of ias_file (ca,
# serial, serial_from; default the serial of CERT), path.
sub get {
    my ($key, $cert, $type, %o) = @_;
    my %ias = (ca => $o{ca}, defined $o{serial} ? (serial => $o{serial})
                                                : (serial_from => $o{serial_from} // $cert));
    delete $ias{ca} unless defined $ias{ca};
    return enroll($key, msgtype => $type, content => ias_file(%ias),
                  signer_cert => $cert, signer_key => $key,
                  exists $o{path} ? (path => $o{path}) : ());
}

# iso_time "2026-12-04 21:54:08Z" or "Dec  4 21:54:08 2026 GMT" (as
# openssl prints times): epoch seconds.
my %MON = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
           Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
sub iso_time {
    my $t = shift // '';
    return timegm($6, $5, $4, $3, $2 - 1, $1)
        if $t =~ /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)Z$/;
    return timegm($5, $4, $3, $2, $MON{$1}, $6)
        if $t =~ /^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT$/ && exists $MON{$1};
    return undef;
}

# crl_info PEM_FILE: what openssl says of a CRL: verified (against
# enroll-ca), issuer, last and next (epoch), entries (serial => { date
# (epoch), reason (text or undef) }).
sub crl_info {
    my $file = shift;
    my %c;
    my ($rc, $out) = run('openssl', 'crl', '-in', $file, '-noout', '-verify',
                         '-CAfile', enroll_ca());
    $c{verified} = $rc == 0 && $out =~ /verify OK/;
    $c{verify_out} = $out;
    ($rc, $out) = run('openssl', 'crl', '-in', $file, '-noout', '-issuer', '-nameopt', 'RFC2253',
                      '-lastupdate', '-nextupdate', '-dateopt', 'iso_8601');
    ($c{issuer}) = $out =~ /^issuer=(.*)$/m;
    ($c{last}) = map { iso_time($_) } $out =~ /^lastUpdate=(.*)$/m;
    ($c{next}) = map { iso_time($_) } $out =~ /^nextUpdate=(.*)$/m;
    ($rc, $out) = run('openssl', 'crl', '-in', $file, '-noout', '-text');
    $c{text} = $out;
    my %e;
    for my $entry (split /\n\s*Serial Number: /, $out) {
        next unless $entry =~ /^([0-9A-F]+)\s*\n\s*Revocation Date: (.*?)\s*$/m;
        my $s = serial_key($1);
        $e{$s} = { date => iso_time($2) };
        $e{$s}{reason} = $1 if $entry =~ /X509v3 CRL Reason Code:.*\n\s*(.+?)\s*$/m;
    }
    $c{entries} = \%e;
    return \%c;
}

# --- an issued transaction ---

my ($dev, $cert, $serial) = device($K[0], 'lifecycle device');
my $tid = $dev->{msg}{transid};
my $csr = $dev->{csr};

# --- CertPoll ---

{
    log_watch();
    my $e = poll($K[0], transid => $tid, subject_from => $csr, csr => $csr);
    reply_is($e, 0, undef, 'CertPoll for an issued transaction, same key: SUCCESS');
    is_deeply([pem_certs(slurp($e->{cert} // '/nonexistent') // '')], [pem_certs(slurp($cert))],
              'CertPoll: the certificate issued for the transaction');
    is($e->{rep}{certs}, 2, 'CertPoll: with the CA, as the enrollment reply');
    is(scalar rows_for($tid), 1, 'CertPoll: nothing more recorded');
    ok(!(grep { /SCEP00076/ } log_lines()), 'CertPoll: issues nothing (no SCEP00076)');
}

for my $case (['another key', $K[1], $tid, $csr, qr/no request with this transaction and key/],
              ['an unknown transaction', $K[0], transid('unknown'), $csr,
               qr/no request with this transaction and key/],
              ['another subject', $K[0], $tid,
               csr($K[0], subject => [[O => $O], [CN => 'somebody else']]),
               qr/the poll names another subject/]) {
    my ($what, $key, $t, $subj, $re) = @$case;
    log_watch();
    my $e = poll($key, transid => $t, subject_from => $subj, csr => $subj);
    my @log = log_lines(qr/SCEP00091/);
    reply_is($e, 2, 4, "CertPoll with $what: FAILURE badCertId");
    logged(qr/SCEP00091: transaction \Q$t\E: CertPoll: $re/, \@log, "CertPoll with $what: SCEP00091 says why");
}

# A renewal's transaction: the certificate comes back to a poll signed
# with the new key, and should to one signed as the renewal was, by the
# renewed certificate (strongSwan pki polls a pending renewal so, with
# the old certificate and key; certmonger makes its poll for a rekey
# so too).
{
    my ($rdev, $rcert) = device($K[2], 'lifecycle renewal');
    my $e = enroll($K[3], msgtype => 17, subject => [[O => $O], [CN => 'lifecycle renewal']],
                   signer_cert => $rcert, signer_key => $K[2]);
    reply_is($e, 0, undef, 'a renewal (RenewalReq): SUCCESS');
    my $rtid = $e->{msg}{transid};
    my $p = poll($K[3], transid => $rtid, subject_from => $e->{csr}, csr => $e->{csr});
    reply_is($p, 0, undef, 'CertPoll for the renewal, signed with the new key: SUCCESS');
    is_deeply([pem_certs(slurp($p->{cert} // '/nonexistent') // '')],
              [pem_certs(slurp($e->{cert} // '/nonexistent') // 'x')],
              'CertPoll for the renewal: the renewed certificate');
    {
        $p = poll($K[2], transid => $rtid, subject_from => $e->{csr},
                  signer_cert => $rcert, signer_key => $K[2]);
        is($p->{rep}{pkiStatus}, 0, 'CertPoll for the renewal, signed by the renewed certificate as the RenewalReq was: SUCCESS');
    }
}

# --- GetCert ---

{
    my $e = get($K[0], $cert, 21);
    reply_is($e, 0, undef, 'GetCert of an issued serial: SUCCESS');
    is($e->{rep}{certs}, 1, 'GetCert: one certificate');
    is_deeply([pem_certs(slurp($e->{cert} // '/nonexistent') // '')], [pem_certs(slurp($cert))],
              'GetCert: that certificate');

    # the serial written out by the test (ias --serial HEX)
    $e = get($K[0], $cert, 21, serial => $serial);
    reply_is($e, 0, undef, 'GetCert, the serial given in hex: SUCCESS');

    my $unknown = sprintf '%02X', 0x10 + int rand 0x60;
    $unknown .= sprintf '%02X', int rand 256 for 1 .. 15;
    log_watch();
    $e = get($K[0], $cert, 21, serial => $unknown);
    my @log = log_lines(qr/SCEP00091/);
    reply_is($e, 2, 4, 'GetCert of an unknown serial: FAILURE badCertId');
    logged(qr/SCEP00091: transaction \Q$e->{msg}{transid}\E: GetCert: no such certificate/, \@log,
           'GetCert of an unknown serial: SCEP00091');

    $e = get($K[0], $cert, 21, ca => pki('ca.pem'));
    reply_is($e, 2, 4, 'GetCert of an issued serial with another issuer: FAILURE badCertId');
}

# --- GetCRL, revocation with scripts/scepadm ---

# getcrl PATH, NAME: GetCRL at PATH signed by the device; (reply, CRL
# info).
sub getcrl {
    my ($path, $name) = @_;
    my $e = get($K[0], $cert, 22, path => $path);
    reply_is($e, 0, undef, "$name: SUCCESS");
    is($e->{rep}{crls}, 1, "$name: one CRL in the reply");
    is($e->{rep}{certs}, 0, "$name: no certificate in the reply");
    my $c = crl_info($e->{rep}{crl_file} // '/nonexistent');
    ok($c->{verified}, "$name: openssl crl -verify -CAfile enroll-ca.pem: OK") or diag($c->{verify_out});
    is($c->{issuer}, "CN=mod_scep TEST ONLY Enrollment CA,O=$O", "$name: issued by the CA");
    cmp_ok(abs(($c->{last} // 0) - time), '<=', 120, "$name: lastUpdate is now")
        or diag($c->{text});
    return ($e, $c);
}

my ($dev2, $cert2, $serial2) = device($K[4], 'lifecycle second');
my ($dev3, $cert3, $serial3) = device($K[5], 'lifecycle third');
{
    my ($e, $c) = getcrl($ENROLL_SCEP, 'GetCRL');
    # (a second may pass between the two times the CA takes)
    cmp_ok(abs(($c->{next} // 0) - ($c->{last} // 0) - 7 * 86400), '<=', 2,
           'GetCRL: nextUpdate 7 days after lastUpdate (SCEPLocalCACRLValidity default)');
    ok(!exists $c->{entries}{$serial}, 'GetCRL: the device\'s certificate is not listed');

    my ($rc, $out, $err) = scepadm('revoke', $serial, '--reason', 'keyCompromise');
    is($rc, 0, 'scepadm revoke SERIAL --reason keyCompromise: exit 0') or diag($out, $err);
    like($out, qr/^revoked 0*\Q$serial\E \(keyCompromise\)$/m, 'scepadm revoke: says so');
    my $at = time;
    ($rc, $out, $err) = scepadm('revoke', $serial2);
    is($rc, 0, 'scepadm revoke SERIAL (no reason): exit 0') or diag($out, $err);
    like($out, qr/\(unspecified\)/, 'scepadm revoke without --reason: unspecified');

    ($e, $c) = getcrl($ENROLL_SCEP, 'GetCRL after revocations');
    my $entry = $c->{entries}{$serial};
    ok($entry, 'GetCRL: the certificate revoked for keyCompromise is listed') or diag($c->{text});
    is($entry && $entry->{reason}, 'Key Compromise', 'GetCRL: with reason Key Compromise');
    cmp_ok(abs((($entry && $entry->{date}) // 0) - $at), '<=', 120, 'GetCRL: revoked now')
        or diag($c->{text});
    $entry = $c->{entries}{$serial2};
    ok($entry, 'GetCRL: the certificate revoked without reason is listed');
    ok($entry && !defined $entry->{reason}, 'GetCRL: reason unspecified: no reasonCode (RFC 5280)');
    ok(!exists $c->{entries}{$serial3}, 'GetCRL: a certificate not revoked is not listed');

    ($e, $c) = getcrl('/enroll/crl30/pkiclient.exe', 'GetCRL where SCEPLocalCACRLValidity is 30');
    cmp_ok(abs(($c->{next} // 0) - ($c->{last} // 0) - 30 * 86400), '<=', 2,
           'SCEPLocalCACRLValidity 30: nextUpdate 30 days after lastUpdate');
    ok($c->{entries}{$serial}, 'SCEPLocalCACRLValidity 30: the same revoked certificates');

    # a revoked certificate still gets its CRL and its certificate
    ($e) = get($K[0], $cert, 21);
    reply_is($e, 0, undef, 'GetCert of a revoked certificate: SUCCESS');

    log_watch();
    $e = get($K[0], $cert, 22, ca => pki('ca.pem'));
    my @log = log_lines(qr/SCEP00091/);
    reply_is($e, 2, 4, 'GetCRL naming another CA: FAILURE badCertId');
    logged(qr/SCEP00091: transaction \Q$e->{msg}{transid}\E: GetCRL: not a certificate of this CA/, \@log,
           'GetCRL naming another CA: SCEP00091');
}

# --- scripts/scepadm ---

{
    my ($rc, $out, $err) = scepadm('list');
    is($rc, 0, 'scepadm list: exit 0') or diag($err);
    my ($head, @lines) = split /\n/, $out;
    like($head // '', qr/^serial\s+subject\s+template\s+issued\s+not_after\s+revoked\s+superseded_by\s*$/,
         'scepadm list: the header');
    my ($line) = grep { /^0*\Q$serial3\E\s/ } @lines;
    ok($line, 'scepadm list: a row for an issued certificate') or diag($out);
    like($line // '', qr/\bCN=lifecycle third,O=\Q$O\E\s+IPSECIntermediateOffline\s/,
         'scepadm list: its subject and template');
    ($line) = grep { /^0*\Q$serial\E\s/ } @lines;
    like($line // '', qr/\s\d{14}Z\s/, 'scepadm list: a revoked certificate shows when');

    ($rc, $out, $err) = scepadm('show', $serial3);
    is($rc, 0, 'scepadm show SERIAL: exit 0') or diag($err);
    is_deeply([pem_certs($out)], [pem_certs(slurp($cert3))], 'scepadm show: the certificate issued (PEM)');
    (my $colons = lc $serial3) =~ s/(..)(?=.)/$1:/g;
    ($rc, $out) = scepadm('show', $colons);
    is_deeply([pem_certs($out)], [pem_certs(slurp($cert3))], "scepadm show $colons: the same");

    my $unknown = 'ABCDEF0123456789ABCDEF0123456789';
    ($rc, $out, $err) = scepadm('show', $unknown);
    is($rc, 1, 'scepadm show of an unknown serial: exit 1');
    like($err, qr/no certificate/, 'scepadm show of an unknown serial: says so');

    ($rc, $out, $err) = scepadm('revoke', $unknown, '--reason', 'keyCompromise');
    isnt($rc, 0, 'scepadm revoke of an unknown serial: fails');
    like($err, qr/no unrevoked certificate \Q$unknown\E/, 'scepadm revoke of an unknown serial: says so');

    ($rc, $out, $err) = scepadm('revoke', $serial, '--reason', 'superseded');
    isnt($rc, 0, 'scepadm revoke of a revoked certificate: fails');
    like($err, qr/no unrevoked certificate/, 'scepadm revoke of a revoked certificate: says so');
    my ($r) = db_query("SELECT reason FROM scep_issued WHERE ltrim(serial, '0') = '$serial'");
    is($r && $r->[0], 'keyCompromise', 'scepadm revoke twice: the first reason stays');

    ($rc, $out, $err) = scepadm('revoke', $serial3, '--reason', 'stolen');
    is($rc, 2, 'scepadm revoke with an unknown reason: exit 2');
    like($err, qr/unknown reason 'stolen'/, 'scepadm revoke with an unknown reason: says so');
    ($r) = db_query("SELECT COALESCE(revoked, 'no') FROM scep_issued WHERE ltrim(serial, '0') = '$serial3'");
    is($r && $r->[0], 'no', 'scepadm revoke with an unknown reason: nothing revoked');

    ($rc, $out, $err) = scepadm('revoke', 'not-hex');
    is($rc, 2, 'scepadm revoke of something that is no hex serial: exit 2');
    like($err, qr/is not a hex serial/, 'scepadm: says so');

    ($rc, $out, $err) = scepadm('frobnicate');
    is($rc, 2, 'scepadm with an unknown command: exit 2 (usage)');

    ($rc, $out, $err) = scepadm('revoke', $serial3, '--reason', 'certificateHold');
    is($rc, 0, 'scepadm revoke --reason certificateHold: exit 0');
    my ($e, $c) = getcrl($ENROLL_SCEP, 'GetCRL after certificateHold');
    is($c->{entries}{$serial3} && $c->{entries}{$serial3}{reason}, 'Certificate Hold',
       'GetCRL: reason Certificate Hold');
}

done_testing();
