"""What the shell classifier knows about programs: read-only ones, wrappers, dangers.

Tables only; :mod:`._classify` and its helpers decide with them.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_DEPTH = 6  # nested commands (bash -c "eval ...") judged before giving up with ask

READ_ONLY = frozenset(
    """
    ls ll dir cat head tail wc grep egrep fgrep rg ag pwd echo printf which type whoami id
    groups date cal uname hostname stat file du df tree sort uniq cut tr diff cmp comm
    basename dirname realpath readlink printenv true false test [ seq nl od hexdump
    md5sum sha1sum sha256sum sha512sum b2sum cksum jq column fold fmt paste join rev tac
    expand unexpand cd whereis locale nproc free uptime ps pgrep lsof tty arch
    """.split()  # noqa: SIM905
)  # fmt: skip


SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "busybox"})


INTERPRETERS = frozenset(
    {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "deno", "bun", "php",
     "lua", "luajit", "osascript", "pwsh", "powershell", "Rscript", "tclsh", "awk", "gawk",
     "mawk", "nawk", "irb", "ghci", "julia"}
)  # fmt: skip


DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "nc", "ncat", "socat", "http", "xh"})


PRIVILEGE = frozenset({"sudo", "doas", "su", "pkexec", "run0", "sudoedit"})


DISK_TOOLS = frozenset(
    {"mkfs", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "cfdisk", "parted", "gdisk",
     "sgdisk", "mkdosfs", "mkntfs", "blkdiscard", "cryptsetup", "zpool", "lvremove", "vgremove"}
)  # fmt: skip


POWER = frozenset({"shutdown", "reboot", "halt", "poweroff", "telinit", "kexec"})


# Wrappers that run the rest of the line: name -> options that take a value.
SIMPLE_WRAPPERS: dict[str, frozenset[str]] = {
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "chronic": frozenset(),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code", "-c", "--command"}),
    "taskset": frozenset(),
}


WRAPPER_NAMES = frozenset({*SIMPLE_WRAPPERS, "env", "timeout", "watch", "xargs", "busybox", "eval"})


# Programs whose appearance among another program's arguments is judged as a command.
KNOWN_PROGRAMS = (
    READ_ONLY | SHELLS | INTERPRETERS | DOWNLOADERS | PRIVILEGE | DISK_TOOLS | POWER
    | WRAPPER_NAMES
    | {"rm", "dd", "shred", "kill", "pkill", "killall", "chmod", "chown", "chgrp", "cp", "mv",
       "install", "ln", "tee", "rsync", "touch", "mkdir", "truncate", "git", "find", "sed",
       "crontab", "systemctl", "rmdir", "unlink"}
) - {"echo", "printf", "true", "false", "test", "[", "cd"}  # fmt: skip


SYSTEM_DIRS = tuple(
    Path(p)
    for p in ("/etc", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/sys",
              "/proc", "/var/lib", "/var/spool/cron", "/root/.ssh", "/System", "/Library")
)  # fmt: skip


CRITICAL_DIRS = frozenset(
    Path(p)
    for p in ("/", "/home", "/root", "/etc", "/usr", "/var", "/bin", "/sbin", "/lib", "/lib64",
              "/boot", "/opt", "/srv", "/sys", "/proc", "/dev", "/mnt", "/media", "/Users",
              "/System", "/Applications", "/Library")
)  # fmt: skip


GIT_READ_ONLY = frozenset(
    {"status", "diff", "log", "show", "blame", "rev-parse", "ls-files", "ls-tree", "cat-file",
     "describe", "shortlog", "grep", "rev-list", "name-rev", "whatchanged", "version", "help",
     "show-ref", "for-each-ref", "merge-base", "count-objects"}
)  # fmt: skip


FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1")


FUNCTION_DEF = re.compile(r"(^|[;&|\s])(function\s+\S+|[A-Za-z_:.][\w:.-]*\s*\(\s*\))\s*\{")


DANGEROUS_ASSIGN = re.compile(
    r"^(PATH|LD_\w+|DYLD_\w+|BASH_ENV|ENV|IFS|PS4|PROMPT_COMMAND|PYTHONPATH|PYTHONSTARTUP|"
    r"PERL5OPT|PERL5LIB|RUBYOPT|NODE_OPTIONS|GIT_\w+|SHELLOPTS|BASHOPTS)="
)


ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


HOME_VAR = re.compile(r"^\$(\{HOME\}|HOME)(?=/|$)")


SIMPLE_SED = re.compile(r"^(\d+(,(\d+|\$))?p|\$p|s(.)(?:(?!\4).)*\4(?:(?!\4).)*\4[gIi0-9p]*)$")
