# Licensed under the Apache License, Version 2.0; see LICENSE.
# Restarts: outstanding one-time passwords and the single password
# survive a graceful restart of the suite's server; with
# SCEPPasswordPersistFile they also survive a full stop and start, and a
# graceful restart that resizes the table keeps those that fit (a
# separate httpd this test starts and stops).  The test server is
# restarted gracefully here: keep this file last.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;

admins_file();

my $vars = Apache::Test::config()->{vars};

sub password {
    my ($path, %opt) = @_;
    my ($res, $j) = admin_json($path, 'alice', %opt);
    return ($res->code == 201 && $j) ? $j->{password} : undef;
}

# --- a graceful restart of the suite's server ---

{
    my $p1 = password('/pw/admin/');
    my $p2 = password('/pw/admin/');
    my $p3 = password('/pw/admin/');
    my $single = password('/single/admin/');
    ok($p1 && $p2 && $p3 && $single, 'passwords before the restart');
    is(race('/pw/race/', $p2, 128)->{word}, 'COMMITTED', 'one used for signature before');
    is(race('/pw/race/', $p3, 160)->{word}, 'COMMITTED', 'one spent before');

    my ($ok, $before, $after) = graceful($vars->{t_pid_file}, '/pw/race/');
    ok($ok, "graceful restart: a new generation answers ($before -> " . ($after // 'none') . ')');

    is(race('/pw/race/', $p1, 160)->{word}, 'COMMITTED', 'an outstanding password works after it');
    is(race('/pw/race/', $p1, 160)->{word}, 'USED', '... once');
    is(race('/pw/race/', $p2, 128)->{word}, 'USED', 'the use spent before stays spent');
    is(race('/pw/race/', $p2, 32)->{word}, 'COMMITTED', 'the other use is still there');
    is(race('/pw/race/', $p3, 160)->{word}, 'USED', 'the spent password stays spent');
    is(password('/single/admin/'), $single, 'the single password is the same');
    is(race('/single/race/', $single, 160)->{word}, 'COMMITTED', 'and still accepted');
    my $p4 = password('/pw/admin/');
    is(race('/pw/race/', $p4, 160)->{word}, 'COMMITTED', 'new passwords work after it');
    my $i = server_info('/pw/race/');
    is($i->{gen}, $after, 'answered by the new generation');
}

# --- SCEPPasswordPersistFile: a separate httpd, stopped and started ---

my $httpd = $vars->{httpd};
my $so = "$vars->{top_dir}/.libs/mod_scep.so";
my $race_so = "$vars->{t_dir}/c-modules/scep_race/.libs/mod_scep_race.so";
my $mpm_conf = $vars->{httpd_conf};
ok(-f $race_so, 'the race module was built') or diag($race_so);

my $dir = tempdir('restart-XXXXXX', DIR => tmpdir());
make_path("$dir/state", { mode => 0700 });
write_admins("$dir/admins.htpasswd");
spew("$dir/mime.types", '');
my $port = free_port();
my $base = "http://127.0.0.1:$port";
my $persist = "$dir/state/passwords";
my $pki = pki();

# conf MAX[, PERSIST[, LOCATION_MAX]]: the standalone configuration;
# SCEPPasswordMax at the server level, or (LOCATION_MAX) in the admin
# page's Location only.
sub conf {
    my ($max, $with_persist, $loc_max) = @_;
    $with_persist //= 1;
    my $p = $with_persist ? qq(SCEPPasswordPersistFile "$persist"\n) : '';
    my $lm = defined $loc_max ? "    SCEPPasswordMax $loc_max\n" : '';
    spew("$dir/httpd.conf", <<CONF);
ServerRoot "$dir"
ServerName 127.0.0.1
Include "$mpm_conf"
LoadModule scep_module "$so"
LoadModule scep_race_module "$race_so"
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel debug
DefaultRuntimeDir "$dir"
TypesConfig "$dir/mime.types"
${p}SCEPCACertificateFile "$pki/ca.pem"
SCEPPasswordMax $max
<Location /admin/>
    SetHandler scep-admin
    SCEPAdminAllowHTTP On
$lm    AuthType Basic
    AuthName "mod_scep TEST administrators"
    AuthBasicProvider file
    AuthUserFile "$dir/admins.htpasswd"
    Require user alice bob
</Location>
<Location /race/>
    SetHandler scep-race
</Location>
CONF
    return "$dir/httpd.conf";
}

my $pid;

# start: httpd in the foreground in its own session; true once it serves.
sub start {
    $pid = fork() // die "fork: $!";
    if (!$pid) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec $httpd, '-f', "$dir/httpd.conf", '-DFOREGROUND'; }
        POSIX::_exit(127);
    }
    for (1 .. 150) {
        return 0 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        if (-s "$dir/httpd.pid"
            && IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
            && server_info('/race/', $base)->{code} == 200) {
            return 1;
        }
        select(undef, undef, undef, 0.1);
    }
    return 0;
}

sub stop {
    return 1 unless $pid;
    kill 'TERM', $pid;
    for (1 .. 100) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            undef $pid;
            return 1;
        }
        select(undef, undef, undef, 0.1);
    }
    diag("httpd $pid did not stop; killing it");
    kill 'KILL', $pid;
    waitpid($pid, 0);
    undef $pid;
    return 0;
}
END { stop() if $pid }

sub log_text { slurp("$dir/error_log") // '' }
sub out_text { slurp("$dir/out") // '' }

sub pw { password('/admin/', base => $base) }
sub use_pw { race('/race/', $_[0] // 'none', $_[1], base => $base, @_[2 .. $#_])->{word} }

conf(5);
ok(start(), 'standalone httpd with SCEPPasswordPersistFile starts')
    or diag(out_text(), log_text());

my @p = map { pw() } 1 .. 4;
is(scalar(grep { defined && /^[0-9A-F]{16}$/ } @p), 4, 'four passwords');
ok(-f $persist, 'the persist file exists');
is(((stat $persist)[2] // 0) & 07777, 0600, 'its mode is 0600');
{
    my $text = slurp($persist) // '';
    ok(!(grep { defined && $text =~ /\Q$_\E/i } @p), 'it holds none of the passwords');
    opendir(my $dh, "$dir/state") or die "opendir: $!";
    my @left = grep { !/^\.\.?$/ && $_ ne 'passwords' } readdir $dh;
    is_deeply(\@left, [], 'no temporary files left beside it');
}
is(use_pw($p[0], 128), 'COMMITTED', 'p1 used for signature');
is(use_pw($p[1], 160), 'COMMITTED', 'p2 spent');

# A graceful restart that grows the table (SCEPPasswordMax 5 -> 8): the
# passwords are copied into the new one.
conf(8);
{
    my ($ok, $b, $a) = graceful($pid, '/race/', $base);
    ok($ok, 'graceful restart with a larger SCEPPasswordMax') or diag(log_text());
}
is(use_pw($p[0], 128), 'USED', 'grown table: p1 signature use stays spent');
is(use_pw($p[0], 32, fail => 1), 'RELEASED', 'grown table: p1 encryption use is there');
# (spent passwords are not copied: refused as unknown now)
like(use_pw($p[1], 160), qr/^(USED|REJECT)$/, 'grown table: p2 stays spent');
is(use_pw($p[2], 160), 'COMMITTED', 'grown table: p3 works');
unlike(log_text(), qr/SCEP00031/, 'nothing dropped (no SCEP00031)');
my @more = map { pw() } 1 .. 4;
is(scalar(grep { defined } @more), 4, 'grown table: room for four more (6 outstanding of 8)');
is(((stat $persist)[2] // 0) & 07777, 0600, 'the rewritten persist file: mode 0600');

# A full stop and start: the persist file brings the passwords back.
ok(stop(), 'httpd stops');
ok(-f $persist, 'the persist file is still there');
ok(start(), 'httpd starts again') or diag(out_text(), log_text());
like(log_text(), qr/SCEP00033: 6 outstanding passwords restored from \Q$persist\E/,
     'SCEP00033: 6 outstanding passwords restored') or diag(log_text());
is(use_pw($p[3], 160), 'COMMITTED', 'after a full restart: p4 works');
is(use_pw($p[0], 128), 'USED', 'after a full restart: p1 signature use stays spent');
is(use_pw($p[0], 32), 'COMMITTED', 'after a full restart: p1 encryption use works');
is(use_pw($p[1], 160), 'REJECT', 'after a full restart: spent p2 is gone');
is(use_pw($p[2], 160), 'REJECT', 'after a full restart: p3, spent after the graceful restart, is gone');
is(use_pw($more[0], -1), 'COMMITTED', 'after a full restart: a password issued after the graceful restart works');
is(use_pw('0123456789ABCDEF', 160), 'REJECT', 'after a full restart: an unknown password is refused');

# Three outstanding (more[1..3]); a graceful restart that shrinks the
# table to 2 drops one (SCEP00031) and keeps two.
conf(2);
{
    my ($ok) = graceful($pid, '/race/', $base);
    ok($ok, 'graceful restart with SCEPPasswordMax 2') or diag(log_text());
}
like(log_text(), qr/SCEP00031: password cache shrunk to 2: 1 outstanding passwords dropped/,
     'SCEP00031: one password dropped') or diag(log_text());
{
    my @w = map { use_pw($_, 160) } @more[1 .. 3];
    is(scalar(grep { $_ eq 'COMMITTED' } @w), 2, 'two of the three still work') or diag("@w");
    is(scalar(grep { $_ eq 'REJECT' } @w), 1, 'the dropped one is refused') or diag("@w");
}
ok(stop(), 'httpd stops');

# The table is sized from every service's SCEPPasswordMax, including a
# Location that inherits its CA from the server (here the server level
# allows 2, the admin page 4).
unlink $persist;
conf(2, 0, 4);
ok(start(), 'httpd with SCEPPasswordMax 4 in a Location starts') or diag(out_text(), log_text());
{
    my @codes = map { (admin_json('/admin/', 'alice', base => $base))[0]->code } 1 .. 5;
    is("@codes[0 .. 1]", '201 201', 'SCEPPasswordMax of the Location: first two');
    {
        is("@codes[2 .. 3]", '201 201', 'SCEPPasswordMax of the Location: third and fourth');
    }
    is($codes[4], 503, 'SCEPPasswordMax of the Location: the fifth is refused');
}
ok(stop(), 'httpd stops');

done_testing();
