# Licensed under the Apache License, Version 2.0; see LICENSE.
# Real SCEP clients from Debian packages against the server: strongSwan's
# pki --scepca, certmonger's scep-submit, micromdm's scepclient.  (They
# only fetch here: PKIOperation is covered in t/5*.t.)
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use File::Temp qw(tempdir);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;

my $mscep = url($SCEPTest::MSCEP);

# which NAME, DIRS...: the first executable NAME in DIRS or $PATH.
sub which {
    my ($name, @dirs) = @_;
    for my $d (@dirs, split /:/, ($ENV{PATH} // '') . ':/usr/sbin:/usr/bin') {
        return "$d/$name" if -x "$d/$name";
    }
    return undef;
}

# pem_file_cns FILE: the names of the certificates of a PEM file.
sub pem_file_cns { cns(pem_certs(slurp($_[0]) // '')) }

# The packages are installed by scripts/install-deps: a missing client is
# a failure, not a reason to skip.
my $pki = which('pki');
my $submit = which('scep-submit', '/usr/libexec/certmonger', '/usr/lib/certmonger');
my $scepclient = which('scepclient');
ok($pki, 'strongSwan pki is installed (strongswan-pki)');
ok($submit, 'certmonger scep-submit is installed (certmonger)');
ok($scepclient, 'micromdm scepclient is installed (scep)');

# strongSwan pki --scepca: sorts the answer into root CA, intermediates
# and RA certificates and checks the RA certificates chain to the CA.
SKIP: {
    skip 'no pki', 3 unless $pki;
    my $d = tempdir('pki-XXXXXX', DIR => tmpdir());
    my ($rc, $out) = run($pki, '--scepca', '-u', $mscep, '--caout', "$d/ca.pem",
                         '--raout', "$d/ra.pem", '--outform', 'pem');
    is($rc, 0, 'pki --scepca succeeds') or diag($out);
    is_deeply([pem_file_cns("$d/ca.pem")], ['ca'], 'pki --scepca: the root CA');
    is_deeply([sort map { pem_file_cns($_) } glob("$d/ra*.pem")],
              [qw(ra-enc ra-sign)], 'pki --scepca: both RA certificates')
        or diag($out);
}
SKIP: {
    skip 'no pki', 3 unless $pki;
    my $d = tempdir('pki-XXXXXX', DIR => tmpdir());
    my ($rc, $out) = run($pki, '--scepca', '-u', url('/scep/sub/pkiclient.exe'),
                         '--caout', "$d/ca.pem", '--raout', "$d/ra.pem",
                         '--outform', 'pem');
    is($rc, 0, 'pki --scepca with a CA chain succeeds') or diag($out);
    is_deeply([sort map { pem_file_cns($_) } glob("$d/ca*.pem")],
              [qw(ca subca)], 'pki --scepca: root and issuing CA') or diag($out);
    is_deeply([sort map { pem_file_cns($_) } glob("$d/ra*.pem")],
              [qw(ra-sub-enc ra-sub-sign)], 'pki --scepca: RA certificates under the issuing CA')
        or diag($out);
}
SKIP: {
    skip 'no pki', 2 unless $pki;
    my $d = tempdir('pki-XXXXXX', DIR => tmpdir());
    my ($rc, $out) = run($pki, '--scepca', '-u', url('/scep/caonly/pkiclient.exe'),
                         '--caout', "$d/ca.pem", '--raout', "$d/ra.pem",
                         '--outform', 'pem');
    is($rc, 0, 'pki --scepca, CA only, succeeds') or diag($out);
    is_deeply([pem_file_cns("$d/ca.pem")], ['ca'], 'pki --scepca: the CA alone');
}

# certmonger's helper: -c GetCACaps (message=0), -C GetCACert (RA first).
SKIP: {
    skip 'no scep-submit', 6 unless $submit;
    my ($rc, $out) = run($submit, '-u', $mscep, '-c');
    is($rc, 0, 'scep-submit -c succeeds') or diag($out);
    is_deeply([grep { length } split /\r?\n/, $out],
              [qw(AES DES3 GetNextCACert POSTPKIOperation Renewal SHA-1
                  SHA-256 SHA-384 SHA-512 SCEPStandard)],
              'scep-submit -c: the capabilities');

    ($rc, $out) = run($submit, '-u', $mscep, '-C');
    is($rc, 0, 'scep-submit -C succeeds') or diag($out);
    my @names = cns(pem_certs($out));
    is_deeply([sort @names], [qw(ca ra-enc ra-sign)], 'scep-submit -C: all certificates')
        or diag($out);
    my ($first) = pem_certs($out);
    is(($first ? (cns($first))[0] : ''), 'ra-enc',
       'scep-submit -C: the RA encryption certificate comes first');

    ($rc, $out) = run($submit, '-u', url('/scep/caonly/pkiclient.exe'), '-C');
    is_deeply([$rc, cns(pem_certs($out))], [0, 'ca'], 'scep-submit -C, CA only')
        or diag($out);
}

# micromdm scepclient: GetCACert, GetCACaps, then PKIOperation (a POST).
# It must get past the CA certificates; until PKIOperation is served, it
# fails there.
SKIP: {
    skip 'no scepclient', 6 unless $scepclient;
    my $d = tempdir('scepclient-XXXXXX', DIR => tmpdir());
    my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'access_log');
    my $before = -s $log // 0;
    my ($rc, $out) = run('timeout', '60', $scepclient, '-server-url', $mscep,
                         '-private-key', "$d/key.pem", '-certificate', "$d/cert.pem",
                         '-cn', 'mod_scep TEST ONLY scepclient', '-challenge', 'test',
                         '-debug');
    like($out, qr/op=GetCACert error=null/, 'scepclient: GetCACert succeeded')
        or diag($out);
    like($out, qr/msg=cacertlist count=3\b/, 'scepclient: three certificates');
    for my $cn ('RA Encryption', 'RA Signing') {
        like($out, qr/msg=cacertlist .*rdn="CN=mod_scep TEST ONLY \Q$cn\E,/,
             "scepclient: $cn certificate parsed");
    }
    # what failed, if anything, is the enrolment, not the CA certificates
    if ($rc) {
        like($out, qr/op=PKIOperation error=/, 'scepclient fails at PKIOperation only')
            or diag($out);
    }
    else {
        pass('scepclient succeeded');
    }

    # httpd writes the access log line just after the answer
    my $new = '';
    for (1 .. 20) {
        if (open my $fh, '<', $log) {
            seek $fh, $before, 0;
            local $/;
            $new = <$fh> // '';
        }
        last if $new =~ /operation=GetCACert/;
        select(undef, undef, undef, 0.1);
    }
    like($new, qr{"GET /certsrv/mscep/mscep\.dll\?operation=GetCACert\S* HTTP/1\.\d" 200 },
         'access_log: its GetCACert answered 200');
}

done_testing();
