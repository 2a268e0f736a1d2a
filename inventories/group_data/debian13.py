"""Hardening data for every Debian 13 host (group `debian13`), in the spirit of dev-sec's
os- and ssh-hardening and the CIS Debian benchmark. The deploy (infra/deploy/tasks) renders it;
the testinfra suite (tests/hosts) checks the host against the same values.
"""

# -- Packages -------------------------------------------------------------------------------
packages_present = [
    "nftables",
    "auditd",
    "unattended-upgrades",
    "apt-listchanges",
    "chrony",
    "sudo",
    "libpam-pwquality",
    "libpam-tmpdir",
    "debsums",
    "needrestart",
    "fail2ban",
    "python3-systemd",
    "sysstat",
    "lynis",
    "apt-show-versions",
    "chkrootkit",
]
# Settings of the tools above (their /etc/default files): what they do on their own.
package_tool_defaults = {
    "/etc/default/sysstat": ("ENABLED", '"true"'),  # system activity accounting
    "/etc/default/debsums": ("CRON_CHECK", "weekly"),  # verify installed files weekly
}
# Legacy, clear-text or unneeded network services and clients (CIS 2.x).
packages_absent = [
    "telnet",
    "inetutils-telnet",
    "telnetd",
    "rsh-client",
    "rsh-server",
    "talk",
    "talkd",
    "nis",
    "tftp-hpa",
    "tftpd-hpa",
    "xinetd",
    "ftp",
    "vsftpd",
    "avahi-daemon",
    "cups",
    "rpcbind",
    "snmpd",
    "ldap-utils",
    "slapd",
    "nfs-kernel-server",
    "samba",
    "isc-dhcp-server",
    "bind9",
    "squid",
    "dovecot-core",
    "xserver-xorg-core",
]

# -- Package sources ------------------------------------------------------------------------
# The package mirror comes from group_data/all.py (`environments.<env>.apt_mirror`); security
# updates from the matching archive below. Hetzner's mirror serves both.
apt_security_mirrors = {
    "https://mirror.hetzner.com/debian/packages": "https://mirror.hetzner.com/debian/security",
    "http://deb.debian.org/debian": "http://deb.debian.org/debian-security",
}
apt_suite = "trixie"

# -- DNS resolvers a host may query (Hetzner's recursive resolvers) -------------------------------
dns_resolvers = ["185.12.64.1", "185.12.64.2"]

# -- Egress probes the verification expects to be blocked (RES-5, SUB-1) --------------------------
egress_blocked_probes = ["api.openai.com:443", "1.1.1.1:443"]

# Names the hosts resolve statically (/etc/hosts), e.g. the lab maps subprocessors to stand-ins.
static_hosts: dict[str, str] = {}

# -- SSH (dev-sec ssh-hardening, Mozilla "modern") ---------------------------------------------
sshd_port = 22
sshd_allow_users = ["root", "deploy"]
sshd_kex = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
]
sshd_ciphers = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
sshd_macs = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
]
sshd_host_key_types = ["ed25519", "rsa"]
sshd_settings = {
    "PermitRootLogin": "prohibit-password",
    "PubkeyAuthentication": "yes",
    "AuthenticationMethods": "publickey",
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "no",
    "PermitEmptyPasswords": "no",
    "HostbasedAuthentication": "no",
    "IgnoreRhosts": "yes",
    "StrictModes": "yes",
    "UsePAM": "yes",
    "DisableForwarding": "yes",
    "AllowTcpForwarding": "no",
    "AllowAgentForwarding": "no",
    "AllowStreamLocalForwarding": "no",
    "X11Forwarding": "no",
    "PermitTunnel": "no",
    "GatewayPorts": "no",
    "PermitUserEnvironment": "no",
    "MaxAuthTries": "3",
    "MaxSessions": "2",
    "MaxStartups": "10:30:60",
    "LoginGraceTime": "30",
    "ClientAliveInterval": "300",
    "ClientAliveCountMax": "2",
    "TCPKeepAlive": "no",
    "Compression": "no",
    "UseDNS": "no",
    "LogLevel": "VERBOSE",
    "PrintMotd": "no",
    "PrintLastLog": "yes",
    "Banner": "/etc/issue.net",
    "RekeyLimit": "512M 1h",
    "PerSourcePenalties": "yes",
}

# -- Kernel parameters ------------------------------------------------------------------------
# Network settings hold per network namespace (a lab container can set and show them);
# the others are host-wide (proven on a real kernel by the encrypted-VM lab).
sysctl_settings = {
    "net.ipv4.ip_forward": 0,
    "net.ipv6.conf.all.forwarding": 0,
    "net.ipv4.conf.all.rp_filter": 1,
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_rfc1337": 1,
    "net.ipv4.conf.all.arp_ignore": 1,
    "net.ipv4.conf.all.arp_announce": 2,
    "net.ipv6.conf.all.accept_ra": 0,
    "net.ipv6.conf.default.accept_ra": 0,
    "kernel.randomize_va_space": 2,
    "kernel.kptr_restrict": 2,
    "kernel.dmesg_restrict": 1,
    "kernel.yama.ptrace_scope": 1,
    "kernel.sysrq": 0,
    "kernel.core_uses_pid": 1,
    "kernel.unprivileged_bpf_disabled": 1,
    "kernel.perf_event_paranoid": 3,
    "net.core.bpf_jit_harden": 2,
    "dev.tty.ldisc_autoload": 0,
    "fs.suid_dumpable": 0,
    "fs.protected_hardlinks": 1,
    "fs.protected_symlinks": 1,
    "fs.protected_fifos": 2,
    "fs.protected_regular": 2,
}

# -- Kernel modules never loaded: rare filesystems, protocols, external buses (CIS 1.1, 3.2) --
blacklisted_modules = [
    "cramfs",
    "freevxfs",
    "hfs",
    "hfsplus",
    "jffs2",
    "udf",
    "usb-storage",
    "firewire-core",
    "thunderbolt",
    "bluetooth",
    "dccp",
    "sctp",
    "rds",
    "tipc",
]

# -- Mounts: temporary filesystems may hold no devices, setuid files or programs -------------
tmp_mount_options = ["nodev", "nosuid", "noexec"]

# -- Accounts and files -------------------------------------------------------------------------
deploy_user = "deploy"
login_defs = {
    "PASS_MAX_DAYS": "365",
    "PASS_MIN_DAYS": "1",
    "PASS_WARN_AGE": "14",
    "UMASK": "027",
    "ENCRYPT_METHOD": "YESCRYPT",
    "LOG_OK_LOGINS": "yes",
    "SHA_CRYPT_MIN_ROUNDS": "5000",
}
pwquality = {"minlen": 14, "minclass": 4, "maxrepeat": 3, "dictcheck": 1, "enforce_for_root": ""}
file_modes = {
    "/etc/passwd": ("root", "root", "644"),
    "/etc/group": ("root", "root", "644"),
    "/etc/shadow": ("root", "shadow", "640"),
    "/etc/gshadow": ("root", "shadow", "640"),
    "/etc/ssh/sshd_config": ("root", "root", "600"),
    "/etc/sudoers": ("root", "root", "440"),
}
directory_modes = {"/root": ("root", "root", "700"), "/etc/sudoers.d": ("root", "root", "750")}

# -- Logging: persistent journal kept 12 months (LOG-3) -------------------------------------------
journald = {
    "Storage": "persistent",
    "Compress": "yes",
    "MaxRetentionSec": "12month",
    "SystemMaxUse": "4G",
    "SystemKeepFree": "1G",
}

# -- Firewall -------------------------------------------------------------------------------------
# Public ingress comes from group_data/all.py (`ingress`); this is the private network's.
private_interface = "enp7s0"
private_ingress = {
    "db": [{"port": 5432, "from_roles": ["app"], "description": "PostgreSQL from app hosts"}],
    "app": [{"port": 8000, "from_roles": ["edge"], "description": "the app from edge hosts"}],
}

# Public listeners a host may have, by group (loopback-only listeners are not public).
listening_ports = {"debian13": [22], "edge": [80, 443], "app": [8000], "db": [5432]}
