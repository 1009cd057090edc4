# Licensed under the Apache License, Version 2.0; see LICENSE.
# GetCACaps (RFC 8894 3.5.2): exact keyword list, LF, no blank line.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD);
use SCEPTest;

my $mscep = $SCEPTest::MSCEP;

my @default = qw(AES DES3 POSTPKIOperation Renewal SHA-1 SHA-256 SHA-384
                 SHA-512 SCEPStandard);
my @next = qw(AES DES3 GetNextCACert POSTPKIOperation Renewal SHA-1 SHA-256
              SHA-384 SHA-512 SCEPStandard);
my @modern = qw(AES GetNextCACert POSTPKIOperation Renewal SHA-256 SHA-384
                SHA-512 SCEPStandard);

sub caps_ok {
    my ($path, $message, $want, $name) = @_;
    my $res = scep_get($path, 'GetCACaps', $message);
    subtest $name => sub {
        is($res->code, 200, 'status 200') or diag($res->as_string);
        is($res->content_type, 'text/plain', 'text/plain');
        my $body = $res->content;
        is($body, join('', map { "$_\n" } @$want), 'exact body');
        unlike($body, qr/\r/, 'LF line ends');
        unlike($body, qr/\n\n|^\n/, 'no blank line');
        cmp_ok(length $body, '<', 1024, 'shorter than 1024 bytes (certmonger)');
    };
}

caps_ok($mscep, undef, \@next, 'rollover CA configured: GetNextCACert listed');
caps_ok("$mscep/pkiclient.exe", '0', \@next, 'message=0 and path suffix');
caps_ok($mscep, 'CAIdentifier', \@next, 'message=CAIdentifier');
caps_ok('/cgi-bin/pkiclient.exe', 'ca', \@next, '/cgi-bin/pkiclient.exe');
caps_ok('/scep/caonly/', undef, \@default, 'defaults: no GetNextCACert');
caps_ok('/scep/ca2/mscep.dll', 'default', \@default, 'second CA, defaults');
caps_ok('/scep/store/', undef, \@default, 'store service, defaults');
caps_ok('/scep/modern/mscep.dll', undef, \@modern,
        'SCEPLegacyAlgorithms Off: no DES3, no SHA-1');

my $res = scep_head($mscep, 'GetCACaps');
is($res->code, 200, 'HEAD: 200');
is($res->content_type, 'text/plain', 'HEAD: text/plain');
is(length($res->content), 0, 'HEAD: no body');

done_testing();
