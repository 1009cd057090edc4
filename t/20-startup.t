# Licensed under the Apache License, Version 2.0; see LICENSE.
# Startup checks, on a separate small httpd per case: bad RA or CA files
# or a store without a usable certificate stop httpd from starting with a
# message naming the file (NDES event 10);
# an RA certificate about to expire starts with a warning (NDES event
# 34/35); the shipped conf/scep.conf works.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use LWP::UserAgent;
use SCEPTest;

my $vars = Apache::Test::config()->{vars};
my $httpd = $vars->{httpd};
my $top = $vars->{top_dir};
my $so = "$top/.libs/mod_scep.so";
# the modules of this run (t/setup/MPM.conf, given with -httpd_conf)
my $mpm_conf = $vars->{httpd_conf};

ok(-x $httpd, "httpd binary $httpd");
ok(-f $so, "module $so");
ok(defined $mpm_conf && -f $mpm_conf, 'the -httpd_conf file of this run')
    or diag("httpd_conf: " . ($mpm_conf // 'undef'));

# try_httpd (t/lib/SCEPTest.pm): a separate small httpd per case.

my $pki = pki();
my %good = (
    SCEPCACertificateFile => "$pki/ca.pem",
    SCEPRASigningCertificateFile => "$pki/ra-sign.pem",
    SCEPRASigningKeyFile => "$pki/ra-sign.key",
    SCEPRAEncryptionCertificateFile => "$pki/ra-enc.pem",
    SCEPRAEncryptionKeyFile => "$pki/ra-enc.key",
);
my @order = qw(SCEPCACertificateFile SCEPRASigningCertificateFile
               SCEPRASigningKeyFile SCEPRAEncryptionCertificateFile
               SCEPRAEncryptionKeyFile);

# scep_conf WHERE, OVERRIDES: the good configuration with some files
# replaced, at the server level or inside a <Location>.
sub scep_conf {
    my ($where, %over) = @_;
    my %c = (%good, %over);
    my $d = join '', map { qq(    $_ "$c{$_}"\n) } @order;
    return $where eq 'server'
        ? "$d<Location /scep/>\n    SetHandler scep\n</Location>\n"
        : "<Location /scep/>\n    SetHandler scep\n$d</Location>\n";
}

# The harness itself: the good configuration starts and answers.
for my $where (qw(server location)) {
    my $r = try_httpd(scep_conf($where), '/scep/?operation=GetCACaps');
    ok($r->{started}, "good configuration ($where) starts")
        or diag("rc $r->{rc}\n$r->{out}\n$r->{log}");
    is($r->{res} && $r->{res}->code, 200, "good configuration ($where) answers");
}

my @bad = (
    ['RA signing key file missing', 'does-not-exist.key',
     SCEPRASigningKeyFile => "$pki/does-not-exist.key"],
    ['RA encryption key file missing', 'does-not-exist.key',
     SCEPRAEncryptionKeyFile => "$pki/does-not-exist.key"],
    ['CA certificate file missing', 'no-such-ca.pem',
     SCEPCACertificateFile => "$pki/no-such-ca.pem"],
    ['CA certificate file unparsable', 'garbage.pem',
     SCEPCACertificateFile => "$pki/garbage.pem"],
    ['RA signing certificate unparsable', 'garbage.pem',
     SCEPRASigningCertificateFile => "$pki/garbage.pem"],
    ['RA key file holds no key', 'ra-both.pem',
     SCEPRASigningKeyFile => "$pki/ra-both.pem"],
    ['RA signing key does not match its certificate', qr/mismatch\.key|ra-sign\.pem/,
     SCEPRASigningKeyFile => "$pki/mismatch.key"],
    ['RA encryption key does not match its certificate', qr/ra-sign\.key|ra-enc\.pem/,
     SCEPRAEncryptionKeyFile => "$pki/ra-sign.key"],
    ['RA signing certificate without digitalSignature', 'ra-enc.pem',
     SCEPRASigningCertificateFile => "$pki/ra-enc.pem",
     SCEPRASigningKeyFile => "$pki/ra-enc.key"],
    ['RA encryption certificate without keyEncipherment', 'ra-sign.pem',
     SCEPRAEncryptionCertificateFile => "$pki/ra-sign.pem",
     SCEPRAEncryptionKeyFile => "$pki/ra-sign.key"],
);

for my $case (@bad) {
    my ($name, $file, %over) = @$case;
    my $file_re = ref $file ? $file : qr/\Q$file\E/;
    for my $where (qw(server location)) {
        my $r = try_httpd(scep_conf($where, %over));
        my $all = "$r->{out}\n$r->{log}";
        subtest "$name ($where)" => sub {
            ok(!$r->{started} && $r->{rc} != 0, 'httpd refuses to start')
                or diag("rc $r->{rc}");
            like($all, $file_re, 'the message names the file');
            like($all, qr/NDES event 10\b/, 'NDES event 10');
        } or diag($all);
    }
}

# A store where no certificate qualifies.
{
    my $store = tempdir('store-XXXXXX', DIR => tmpdir());
    for my $f (qw(noeku.pem noeku.key nokey.pem foreign.pem foreign.key
                  expired.pem expired.key future.pem future.key)) {
        copy("$pki/store/$f", "$store/$f") or die "copy $f: $!";
    }
    my $r = try_httpd(qq(SCEPCACertificateFile "$pki/ca.pem"\n)
                      . qq(SCEPRACertificateStore "$store"\n)
                      . "<Location /scep/>\n    SetHandler scep\n</Location>\n");
    my $all = "$r->{out}\n$r->{log}";
    subtest 'RA certificate store without a usable certificate' => sub {
        ok(!$r->{started} && $r->{rc} != 0, 'httpd refuses to start') or diag("rc $r->{rc}");
        like($all, qr/\Q$store\E/, 'the message names the store');
        like($all, qr/NDES event 10\b/, 'NDES event 10');
    } or diag($all);
}

# An RA certificate expiring within 30 days: starts, with a warning.
{
    my $r = try_httpd(scep_conf('location',
        SCEPRASigningCertificateFile => "$pki/ra-expiring.pem",
        SCEPRASigningKeyFile => "$pki/ra-expiring.key"),
        '/scep/?operation=GetCACert');
    ok($r->{started}, 'RA certificate expiring in 10 days: httpd starts')
        or diag("rc $r->{rc}\n$r->{out}\n$r->{log}");
    is($r->{res} && $r->{res}->code, 200, 'RA certificate expiring in 10 days: serves');
    like("$r->{out}\n$r->{log}", qr/\[scep:warn\].*NDES event 3[45]\b/,
         'RA certificate expiring in 10 days: warning with NDES event 34/35')
        or diag("$r->{out}\n$r->{log}");
}

# The shipped configuration, with its /etc/mod_scep laid out from the
# test PKI.
{
    my $etc = tempdir('etc-XXXXXX', DIR => tmpdir());
    for my $f (qw(ca.pem ra-sign.pem ra-sign.key ra-enc.pem ra-enc.key)) {
        copy("$pki/$f", "$etc/$f") or die "copy $f: $!";
    }
    my $shipped = slurp("$top/conf/scep.conf");
    ok(defined $shipped, 'conf/scep.conf is there');
    $shipped //= '';
    (my $conf = $shipped) =~ s{/etc/mod_scep\b}{$etc}g;
    my $r = try_httpd($conf,
        '/certsrv/mscep/mscep.dll?operation=GetCACert&message=CAIdentifier');
    ok($r->{started}, 'conf/scep.conf starts') or diag("$r->{out}\n$r->{log}");
    my $res = $r->{res};
    is($res && $res->code, 200, 'conf/scep.conf serves GetCACert');
    is_deeply([cns(pkcs7_certs($res ? $res->content : ''))],
              [qw(ca ra-enc ra-sign)], 'conf/scep.conf: RA and CA certificates');

    # Without its files it serves no SCEP, and httpd still starts.
    ($conf = $shipped) =~ s{/etc/mod_scep\b}{$etc/absent}g;
    $r = try_httpd($conf, '/certsrv/mscep/mscep.dll?operation=GetCACaps');
    ok($r->{started}, 'conf/scep.conf without its files starts')
        or diag("$r->{out}\n$r->{log}");
    isnt($r->{res} && $r->{res}->code, 200, 'conf/scep.conf without its files serves no SCEP');
}

# A <Location> inside another is checked as requests under it see it:
# merged onto the enclosing one, which has the CA and RA here.
{
    my $r = try_httpd(scep_conf('location')
                      . "<Location /scep/inner/>\n    SetHandler scep\n"
                      . "    SCEPProvider local\n    SCEPHashAlgorithm SHA512\n</Location>\n",
                      '/scep/inner/?operation=GetCACaps');
    ok($r->{started}, 'a nested Location setting only SCEPProvider: httpd starts')
        or diag($r->{out}, $r->{log});
    like($r->{res} ? $r->{res}->content : '', qr/POSTPKIOperation/, 'and the nested Location serves with the enclosing CA');
}

done_testing();
