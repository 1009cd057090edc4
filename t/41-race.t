# Licensed under the Apache License, Version 2.0; see LICENSE.
# One-time passwords under concurrency, through mod_scep.h's provider API
# (verify, commit, notify) as the test-only handler scep-race drives it
# (t/c-modules/scep_race): many requests at once, from separate
# processes, served by several httpd processes, spend a password's use
# exactly once; signature and encryption uses are separate (NDES); a
# failed request never spends a password; passwords are bound to their
# CA.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;

admins_file();

my $RACE = '/pw/race/';

# password PATH[, USER]: a new password from an admin page's JSON.
sub password {
    my ($path, $user) = @_;
    my ($res, $j) = admin_json($path, $user // 'alice');
    die "no password from $path: " . $res->as_string
        unless $res->code == 201 && $j && $j->{password};
    return $j->{password};
}

sub words {
    my %n;
    $n{ $_->{word} }++ for @_;
    return join ', ', map { "$_ x$n{$_}" } sort keys %n;
}

sub pids { my %p; $p{ $_->{pid} // '?' }++ for @_; return keys %p }

{
    my $i = server_info($RACE);
    is($i->{code}, 200, 'the race handler answers') or diag($i->{body});
    like($i->{body}, qr/^INFO pid=\d+ gen=\d+/, 'it says which process answered');
}

# --- one at a time ---

{
    my $pw = password('/pw/admin/', 'bob');
    my $r = race($RACE, $pw, 160);
    is($r->{word}, 'COMMITTED', 'a fresh password is accepted') or diag($r->{body});
    is($r->{code}, 200, 'accepted: 200');
    is($r->{admin}, 'bob', 'verify names the administrator it was issued to');
    $r = race($RACE, $pw, 160);
    is($r->{word}, 'USED', 'the second request is refused: used (NDES event 43)');
    is($r->{code}, 409, 'refused: 409');
    is(race($RACE, $pw, 128)->{word}, 'USED', 'spent for signature too');
    is(race($RACE, $pw, 32)->{word}, 'USED', 'spent for encryption too');
    is(race($RACE, $pw, -1)->{word}, 'USED', 'spent for a request without KeyUsage');

    is(race($RACE, '0123456789ABCDEF', 160)->{word}, 'REJECT', 'an unknown password is refused');
    is(race($RACE, '', 160)->{word}, 'REJECT', 'an empty password is refused');
    my $other = password('/pw/admin/');
    is(race($RACE, substr($other, 0, 15), 160)->{word}, 'REJECT', 'a truncated password is refused');
    is(race($RACE, "${other}0", 160)->{word}, 'REJECT', 'a password with a character more is refused');
    is(race($RACE, lc $other, 160)->{word}, 'COMMITTED', 'hex typed in lower case is the same password');

    # no KeyUsage: the general-purpose use
    $pw = password('/pw/admin/');
    is(race($RACE, $pw, -1)->{word}, 'COMMITTED', 'a request without KeyUsage spends it');
    is(race($RACE, $pw, 128)->{word}, 'USED', '... for signature as well');
}

# --- one signature use and one encryption use ---

{
    my $pw = password('/pw/admin/');
    is(race($RACE, $pw, 128)->{word}, 'COMMITTED', 'signature (KeyUsage 0x80) accepted');
    is(race($RACE, $pw, 128)->{word}, 'USED', 'a second signature request refused');
    is(race($RACE, $pw, 32)->{word}, 'COMMITTED', 'then encryption (0x20) accepted');
    is(race($RACE, $pw, 32)->{word}, 'USED', 'a second encryption request refused');
    is(race($RACE, $pw, 160)->{word}, 'USED', 'then signature+encryption refused');

    $pw = password('/pw/admin/');
    is(race($RACE, $pw, 32)->{word}, 'COMMITTED', 'encryption first');
    is(race($RACE, $pw, 160)->{word}, 'USED', 'then signature+encryption refused (one use is spent)');
    is(race($RACE, $pw, 128)->{word}, 'COMMITTED', 'signature still accepted');
}

# --- a failed request never spends a password ---

{
    my $pw = password('/pw/admin/');
    my $r = race($RACE, $pw, 160, fail => 1);
    is($r->{word}, 'RELEASED', 'verify, then the CA refuses: released') or diag($r->{body});
    is(race($RACE, $pw, 160, fail => 1)->{word}, 'RELEASED', 'and again');
    is(race($RACE, $pw, 160)->{word}, 'COMMITTED', 'the password still works after failed requests');
    is(race($RACE, $pw, 160, fail => 1)->{word}, 'USED', 'once spent, even a request that would fail is refused');

    $pw = password('/pw/admin/');
    is(race($RACE, $pw, 128, fail => 1)->{word}, 'RELEASED', 'signature request fails');
    is(race($RACE, $pw, 32)->{word}, 'COMMITTED', 'encryption accepted');
    is(race($RACE, $pw, 128)->{word}, 'COMMITTED', 'signature accepted after its failed attempt');
}

# --- bound to the CA ---

{
    my $other = password('/other/admin/');
    is(race($RACE, $other, 160)->{word}, 'REJECT', "another CA's password is refused");
    my $mine = password('/pw/admin/');
    is(race('/other/race/', $mine, 160)->{word}, 'REJECT', 'and ours at the other CA');
    is(race('/other/race/', $other, 160)->{word}, 'COMMITTED', "the other CA's password works there");
    is(race($RACE, $mine, 160)->{word}, 'COMMITTED', 'ours still works here');
    my $single = password('/single/admin/');
    is(race($RACE, $single, 160)->{word}, 'REJECT', 'the single password is not a one-time password');
}

# --- races: all at once, from separate processes ---

my %all_pids;
{
    my $pw = password('/pw/admin/');
    # each request holds its reservation 100 ms between verify and commit
    my @r = parallel_get(map { race_url($RACE, $pw, 160, sleep => 100) } 1 .. 40);
    my @ok = grep { $_->{word} eq 'COMMITTED' } @r;
    my @no = grep { $_->{code} == 409 && $_->{word} =~ /^(REJECT|USED)$/ } @r;
    is(scalar @ok, 1, '40 concurrent requests for one password: exactly one accepted')
        or diag(words(@r));
    is(scalar @no, 39, '... 39 refused (in use or used)') or diag(words(@r));
    my @p = pids(@r);
    $all_pids{$_}++ for @p;
    cmp_ok(scalar @p, '>', 1, 'served by ' . scalar(@p) . ' httpd processes')
        or diag(words(@r));
    is(race($RACE, $pw, 160)->{word}, 'USED', 'afterwards: used');
}

{
    my $pw = password('/pw/admin/');
    my @urls = map { race_url($RACE, $pw, $_ % 2 ? 128 : 32, sleep => 50) } 1 .. 40;
    my @r = parallel_get(@urls);
    my @sig = grep { $_->{word} eq 'COMMITTED' } @r[grep { $_ % 2 == 0 } 0 .. 39];
    my @enc = grep { $_->{word} eq 'COMMITTED' } @r[grep { $_ % 2 == 1 } 0 .. 39];
    is(scalar @sig, 1, '20 signature and 20 encryption requests at once: one signature accepted')
        or diag(words(@r));
    is(scalar @enc, 1, '... and one encryption accepted') or diag(words(@r));
    is(scalar(grep { $_->{code} == 409 } @r), 38, '... 38 refused') or diag(words(@r));
    $all_pids{$_}++ for pids(@r);
}

{
    # no delay: the tightest window
    my $pw = password('/pw/admin/');
    my @r = parallel_get(map { race_url($RACE, $pw, -1) } 1 .. 40);
    is(scalar(grep { $_->{word} eq 'COMMITTED' } @r), 1,
       '40 requests without KeyUsage at once: exactly one accepted') or diag(words(@r));
    is(scalar(grep { $_->{code} == 409 } @r), 39, '... 39 refused') or diag(words(@r));
    $all_pids{$_}++ for pids(@r);
}

{
    # several passwords raced at once: each spent once
    my @pw = map { password('/pw/admin/') } 1 .. 5;
    my @urls = map { my $p = $_; map { race_url($RACE, $p, 160, sleep => 20) } 1 .. 8 } @pw;
    my @r = parallel_get(@urls);
    my @per = map { my $i = $_; scalar grep { $_->{word} eq 'COMMITTED' } @r[$i * 8 .. $i * 8 + 7] } 0 .. 4;
    is_deeply(\@per, [1, 1, 1, 1, 1], '5 passwords, 8 requests each, all at once: each accepted once')
        or diag(words(@r));
}

cmp_ok(scalar(keys %all_pids), '>', 1,
       'the races crossed processes (' . join(' ', sort keys %all_pids) . ')');

done_testing();
