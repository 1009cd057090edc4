# Licensed under the Apache License, Version 2.0; see LICENSE.
# Several SCEP services in one server: per-Location CAs, inheritance from
# the server and virtual host levels, RA certificates from a store.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD);
use SCEPTest;

sub certs_are {
    my ($res, $name, @want) = @_;
    subtest $name => sub {
        is($res->code, 200, 'status 200') or diag($res->as_string);
        is($res->content_type, 'application/x-x509-ca-ra-cert', 'content type');
        is_deeply([cns(pkcs7_certs($res->content))], [sort @want],
                  'the expected certificates');
    };
}

my $main = scep_get($SCEPTest::MSCEP, 'GetCACert');
my $ca2 = scep_get('/scep/ca2/mscep.dll', 'GetCACert');
certs_are($main, 'server-level CA inherited by a Location that sets only RA files',
          qw(ra-enc ra-sign ca));
certs_are($ca2, 'a Location with its own CA', qw(ra2-enc ra2-sign ca2));
ok($main->content ne $ca2->content, 'two services, two different answers');

# RA certificates from a store: the newest valid signing and encryption
# pairs; never the ones issued later without the EKU, without a key, by
# another CA, expired or not yet valid.
certs_are(scep_get('/scep/store/pkiclient.exe', 'GetCACert', 'default'),
          'SCEPRACertificateStore picks the newest valid pairs',
          qw(store/enc-new store/sign-new ca));

certs_are(scep_get('/scep/store-both/', 'GetCACert'),
          'SCEPRACertificateStore: the newest certificate serves both roles, sent once',
          qw(store-both/both-new ca));

# A virtual host with its own CA and RA, set at the vhost level.
Apache::TestRequest::module('scep_vhost');
certs_are(scep_get('/vhost/mscep/mscep.dll', 'GetCACert'),
          'virtual host with its own CA and RA', qw(ra2-enc ra2-sign ca2));
my $caps = scep_get('/vhost/mscep/mscep.dll', 'GetCACaps');
is($caps->code, 200, 'virtual host: GetCACaps 200');
unlike($caps->content, qr/GetNextCACert/, 'virtual host: no rollover CA');
Apache::TestRequest::module('default');

done_testing();
