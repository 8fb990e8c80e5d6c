/*
 * cli/qemu.c: QEMU's command line into a vm_config. Every accepted form and
 * the config it gives, every refusal and its one line, the -v notes; then
 * $BOOTVM as `bootvm qemu` and through a symlink named qemu-system-x86_64.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "helpers.h"
#include "util/log.h"
#include "vmm/config.h"

struct parsed {
	struct vm_config cfg;
	struct helper_log log;
	int ret;
	struct cli_run_opts opts;
};

/* cli_qemu_parse() on "qemu-system-x86_64 ARGS..." with its log captured. */
static void parse(struct parsed *p, const char *const *args)
{
	char *argv[128];
	int argc = 0;

	argv[argc++] = "qemu-system-x86_64";
	while (*args) {
		assert_true(argc < 127);
		argv[argc++] = (char *)*args++;
	}
	argv[argc] = NULL;
	memset(p, 0, sizeof(*p));
	vm_config_init(&p->cfg);
	log_set_sink(helper_log_sink, &p->log);
	p->ret = cli_qemu_parse(argc, argv, &p->cfg, &p->opts);
	log_set_sink(NULL, NULL);
	log_set_level(LOG_WARN);
}

/* Accepted with no error and no warning; the caller checks cfg, then done(). */
static void accepted(struct parsed *p, const char *const *args)
{
	parse(p, args);
	if (p->ret || p->log.errors || p->log.warnings)
		fail_msg("%s ...: ret %d, %d errors (%s), %d warnings (%s)", args[0], p->ret,
			 p->log.errors, p->log.last_error, p->log.warnings, p->log.last_warning);
}

static void done(struct parsed *p)
{
	vm_config_free(&p->cfg);
}

/* Refused: status 2 and exactly one error line containing needle. */
static void refuse(const char *needle, const char *const *args)
{
	struct parsed p;

	parse(&p, args);
	if (p.ret != CLI_USAGE || p.log.errors != 1 || !strstr(p.log.last_error, needle))
		fail_msg("%s %s ...: ret %d, %d errors, last '%s' (want one with '%s')", args[0],
			 args[1] ? args[1] : "", p.ret, p.log.errors, p.log.last_error, needle);
	done(&p);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define K "-kernel", "bzImage"

static void test_tutorial_command(void **state)
{
	struct parsed p;

	(void)state;
	accepted(&p, ARGS("-enable-kvm", "-m", "256M", "-kernel", "bzImage", "-initrd", "initrd.cpio",
			"-append", "console=ttyS0 panic=-1", "-nographic", "-no-reboot"));
	assert_string_equal(p.cfg.kernel_path, "bzImage");
	assert_string_equal(p.cfg.initrd_path, "initrd.cpio");
	assert_string_equal(p.cfg.cmdline, "console=ttyS0 panic=-1");
	assert_int_equal(p.cfg.mem_size, 256ULL << 20);
	assert_int_equal(p.cfg.nr_cpus, 1);
	assert_int_equal(p.cfg.console, CONSOLE_STDIO);
	assert_int_equal(p.cfg.nr_disks, 0);
	assert_int_equal(p.cfg.nr_nets, 0);
	assert_false(p.cfg.rng);
	done(&p);

	/* QEMU's default RAM, and --opt spelled with two dashes. */
	accepted(&p, ARGS("--kernel", "vmlinux", "--enable-kvm", "--nographic"));
	assert_int_equal(p.cfg.mem_size, 128ULL << 20);
	assert_string_equal(p.cfg.kernel_path, "vmlinux");
	done(&p);

	/* The microVM tutorial's. */
	accepted(&p, ARGS("-M", "microvm,x-option-roms=off,pit=off,pic=off,isa-serial=on,rtc=off",
			"-enable-kvm", "-cpu", "host", "-m", "512m", "-smp", "2", "-nodefaults",
			"-no-user-config", "-nographic", "-serial", "mon:stdio", "-display", "none",
			"-kernel", "vmlinux", "-append", "console=ttyS0 acpi=off reboot=t",
			"-drive", "id=test,file=rootfs.ext4,format=raw,if=none",
			"-device", "virtio-blk-pci,drive=test", "-netdev", "tap,id=tap0,ifname=tap0,script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=tap0", "-device", "virtio-rng-pci",
			"-object", "rng-random,id=rng0,filename=/dev/urandom", "-bios", "bios-microvm.bin",
			"-boot", "c", "-no-reboot"));
	assert_int_equal(p.cfg.mem_size, 512ULL << 20);
	assert_int_equal(p.cfg.nr_cpus, 2);
	assert_int_equal(p.cfg.nr_disks, 1);
	assert_string_equal(p.cfg.disks[0].path, "rootfs.ext4");
	assert_int_equal(p.cfg.nr_nets, 1);
	assert_int_equal(p.cfg.nets[0].kind, VM_NET_TAP);
	assert_string_equal(p.cfg.nets[0].tap_name, "tap0");
	assert_string_equal(p.cfg.nets[0].id, "tap0");
	assert_true(p.cfg.rng);
	done(&p);
}

static void test_memory(void **state)
{
	static const struct { const char *arg; unsigned long long bytes; } ok[] = {
		{ "256", 256ULL << 20 }, { "256M", 256ULL << 20 }, { "1G", 1ULL << 30 },
		{ "2g", 2ULL << 30 }, { "size=512M", 512ULL << 20 }, { "65536K", 64ULL << 20 },
		{ "512M,slots=2,maxmem=4G", 512ULL << 20 }, { "size=1G,maxmem=2G", 1ULL << 30 },
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		accepted(&p, ARGS(K, "-m", ok[i].arg));
		if (p.cfg.mem_size != ok[i].bytes)
			fail_msg("-m %s: %llu bytes", ok[i].arg, (unsigned long long)p.cfg.mem_size);
		done(&p);
	}
	refuse("-m 'lots': not a size", ARGS(K, "-m", "lots"));
	refuse("-m 'slots=2': no size", ARGS(K, "-m", "slots=2"));
	refuse("-m: 'foo' is not supported", ARGS(K, "-m", "256M,foo=1"));
	refuse("at least 8 MiB", ARGS(K, "-m", "4M"));
	refuse("option '-m' needs a value", ARGS(K, "-m"));
}

static void test_smp(void **state)
{
	static const struct { const char *arg; unsigned int cpus; } ok[] = {
		{ "1", 1 }, { "4", 4 }, { "cpus=2", 2 }, { "2,sockets=1,cores=2,threads=1", 2 },
		{ "cores=2,threads=2,sockets=1", 4 }, { "sockets=2,cores=2", 4 },
		{ "2,maxcpus=4", 2 }, { "maxcpus=3", 3 }, { "cpus=2,cores=4", 2 }, { "255", 255 },
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		accepted(&p, ARGS(K, "-smp", ok[i].arg));
		if (p.cfg.nr_cpus != ok[i].cpus)
			fail_msg("-smp %s: %u vCPUs, want %u", ok[i].arg, p.cfg.nr_cpus, ok[i].cpus);
		done(&p);
	}
	refuse("cpus=8 is more than sockets*cores*threads = 4",
	       ARGS(K, "-smp", "cpus=8,sockets=1,cores=2,threads=2"));
	refuse("maxcpus=1 is less than cpus=2", ARGS(K, "-smp", "2,maxcpus=1"));
	refuse("256 vCPUs: not from 1 to 255", ARGS(K, "-smp", "256"));
	refuse("vCPUs: not from 1 to 255", ARGS(K, "-smp", "sockets=4096,dies=4096,clusters=4096,cores=4096,threads=4096"));
	refuse("-smp: threads='99999999999999999999': not a number from 0 to 4096",
	       ARGS(K, "-smp", "threads=99999999999999999999"));
	refuse("-smp: cpus='x': not a number", ARGS(K, "-smp", "x"));
	refuse("-smp: cores=0: must be at least 1", ARGS(K, "-smp", "cores=0"));
	refuse("-smp: 'foo' is not supported", ARGS(K, "-smp", "2,foo=1"));
}

static void test_drives(void **state)
{
	struct parsed p;

	(void)state;
	accepted(&p, ARGS(K, "-drive", "if=virtio,format=raw,file=root.img,readonly=on,id=d0,cache=none",
			"-drive", "file=a,,b.img,if=virtio,format=raw,serial=SER1,discard=unmap,cache=unsafe",
			"-drive", "file=c.img,if=virtio,cache=directsync,aio=io_uring,index=2"));
	assert_int_equal(p.cfg.nr_disks, 3);
	assert_string_equal(p.cfg.disks[0].path, "root.img");
	assert_true(p.cfg.disks[0].readonly);
	assert_string_equal(p.cfg.disks[0].serial, "");	/* id= names the drive, not the disk */
	assert_int_equal(p.cfg.disks[0].cache, VM_DISK_CACHE_NONE);
	assert_string_equal(p.cfg.disks[1].path, "a,b.img");
	assert_false(p.cfg.disks[1].readonly);
	assert_string_equal(p.cfg.disks[1].serial, "SER1");
	assert_true(p.cfg.disks[1].discard);
	assert_int_equal(p.cfg.disks[1].cache, VM_DISK_CACHE_WRITEBACK);
	assert_int_equal(p.cfg.disks[2].cache, VM_DISK_CACHE_NONE);
	done(&p);

	/* No -kernel: the kernel inside the disk boots (as bootvm run --disk). */
	accepted(&p, ARGS("-enable-kvm", "-m", "1G", "-drive", "format=raw,file=debian.img"));
	assert_null(p.cfg.kernel_path);
	assert_int_equal(p.cfg.nr_disks, 1);
	assert_string_equal(p.cfg.disks[0].path, "debian.img");
	done(&p);

	/* -hda and a bare image; if=none attached by -device, before or after it. */
	accepted(&p, ARGS("disk0.img", "-hdb", "disk1.img", "-device", "virtio-blk-pci,drive=late",
			"-drive", "file=early.img,if=none,id=early", "-device", "virtio-blk,drive=early",
			"-drive", "file=late.img,if=none,id=late,format=raw", "-drive", "file=ide.img,if=ide",
			"-drive", "file=unused.img,if=none,id=unused"));
	assert_int_equal(p.cfg.nr_disks, 5);
	assert_string_equal(p.cfg.disks[0].path, "disk0.img");
	assert_string_equal(p.cfg.disks[1].path, "disk1.img");
	assert_string_equal(p.cfg.disks[2].path, "early.img");
	assert_string_equal(p.cfg.disks[3].path, "ide.img");
	assert_string_equal(p.cfg.disks[4].path, "late.img");
	done(&p);

	refuse("-drive: format=qcow2 is not supported", ARGS(K, "-drive", "file=a.qcow2,format=qcow2"));
	refuse("-drive: if=floppy is not supported", ARGS(K, "-drive", "file=a.img,if=floppy"));
	refuse("no file=", ARGS(K, "-drive", "if=virtio,format=raw"));
	refuse("-drive: media=cdrom is not supported", ARGS(K, "-drive", "file=a.iso,media=cdrom"));
	refuse("-drive: snapshot=on is not supported", ARGS(K, "-drive", "file=a.img,snapshot=on"));
	refuse("-drive: 'foo' is not supported", ARGS(K, "-drive", "file=a.img,foo=bar"));
	refuse("-drive: cache='fast'", ARGS(K, "-drive", "file=a.img,cache=fast"));
	refuse("-drive: readonly='maybe': expected on or off", ARGS(K, "-drive", "file=a.img,readonly=maybe"));
	refuse("-drive: discard='x'", ARGS(K, "-drive", "file=a.img,discard=x"));
	refuse("drive id 'd' given twice", ARGS(K, "-drive", "file=a.img,id=d", "-drive", "file=b.img,id=d"));
	refuse("no -drive with id 'nope'", ARGS(K, "-device", "virtio-blk-pci,drive=nope"));
	refuse("drive 'd' is already attached",
	       ARGS(K, "-drive", "file=a.img,if=virtio,id=d", "-device", "virtio-blk-pci,drive=d"));
	refuse("needs drive=", ARGS(K, "-device", "virtio-blk-pci"));
	refuse("virtio-blk-pci: 'scsi' is not supported", ARGS(K, "-drive", "file=a.img,if=none,id=d",
							      "-device", "virtio-blk-pci,drive=d,scsi=off"));
	/* What --disk's own parser refuses, it says once. */
	refuse("id 'SERIAL-LONGER-THAN-TWENTY' is longer than 20",
	       ARGS(K, "-drive", "file=a.img,serial=SERIAL-LONGER-THAN-TWENTY"));
	refuse("given twice, and not read-only", ARGS(K, "-hda", "a.img", "-hdb", "a.img"));
}

static void test_network(void **state)
{
	struct parsed p;

	(void)state;
	accepted(&p, ARGS(K, "-netdev", "user,id=n0,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53",
			"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
			"-nic", "user,model=virtio-net-pci,hostfwd=tcp::8080-:80,restrict=on",
			"-device", "virtio-net-pci,netdev=t0", "-net", "none",
			"-netdev", "tap,id=t0,ifname=tap7,script=no,downscript=no,vhost=on"));
	assert_int_equal(p.cfg.nr_nets, 3);
	assert_int_equal(p.cfg.nets[0].kind, VM_NET_USER);
	assert_string_equal(p.cfg.nets[0].id, "n0");
	assert_int_equal(p.cfg.nets[0].nr_fwd, 2);
	assert_int_equal(p.cfg.nets[0].fwd[0].host_port, 2222);
	assert_int_equal(p.cfg.nets[0].fwd[0].guest_port, 22);
	assert_false(p.cfg.nets[0].fwd[0].udp);
	assert_true(p.cfg.nets[0].fwd[1].udp);
	assert_memory_equal(p.cfg.nets[0].mac, ((uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }), 6);
	assert_int_equal(p.cfg.nets[1].kind, VM_NET_USER);
	assert_true(p.cfg.nets[1].restrict_net);
	assert_int_equal(p.cfg.nets[1].fwd[0].host_port, 8080);
	assert_string_equal(p.cfg.nets[1].id, "net1");
	assert_int_equal(p.cfg.nets[2].kind, VM_NET_TAP);
	assert_string_equal(p.cfg.nets[2].tap_name, "tap7");
	done(&p);

	/* e1000 and friends: virtio-net instead, said once as a warning. */
	parse(&p, ARGS(K, "-netdev", "user,id=a", "-device", "e1000,netdev=a", "-netdev", "user,id=b",
		       "-device", "e1000,netdev=b,mac=52:54:00:00:00:02", "-nic", "tap,ifname=tap0,model=rtl8139"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.log.errors, 0);
	assert_int_equal(p.log.warnings, 1);
	assert_non_null(strstr(p.log.last_warning, "-device e1000: bootvm has virtio-net only; the "
					"guest gets virtio-net instead"));
	assert_int_equal(p.cfg.nr_nets, 3);
	assert_int_equal(p.cfg.nets[2].kind, VM_NET_TAP);
	done(&p);

	/* A -netdev no device uses: QEMU warns, so does bootvm. */
	parse(&p, ARGS(K, "-netdev", "user,id=lonely"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.cfg.nr_nets, 0);
	assert_int_equal(p.log.warnings, 1);
	assert_non_null(strstr(p.log.last_warning, "-netdev lonely: no -device uses it"));
	done(&p);

	refuse("-netdev bridge: not supported", ARGS(K, "-netdev", "bridge,id=b,br=br0"));
	refuse("-netdev user: needs id=", ARGS(K, "-netdev", "user,hostfwd=tcp::22-:22"));
	refuse("-netdev tap: needs ifname=", ARGS(K, "-netdev", "tap,id=t"));
	refuse("script=/etc/qemu-ifup is not supported",
	       ARGS(K, "-netdev", "tap,id=t,ifname=tap0,script=/etc/qemu-ifup"));
	refuse("-netdev: 'smb' is not supported for user", ARGS(K, "-netdev", "user,id=u,smb=/srv"));
	refuse("net=192.168.76.0/24 is not supported", ARGS(K, "-netdev", "user,id=u,net=192.168.76.0/24"));
	refuse("-netdev: id 'u' given twice", ARGS(K, "-netdev", "user,id=u", "-netdev", "user,id=u"));
	refuse("needs netdev=", ARGS(K, "-device", "virtio-net-pci"));
	refuse("no -netdev with id 'nope'", ARGS(K, "-device", "virtio-net-pci,netdev=nope"));
	refuse("netdev 'u' is already used", ARGS(K, "-netdev", "user,id=u", "-device", "virtio-net-pci,netdev=u",
						   "-device", "virtio-net-pci,netdev=u"));
	refuse("virtio-net-pci: 'foo' is not supported", ARGS(K, "-netdev", "user,id=u",
							      "-device", "virtio-net-pci,netdev=u,foo=1"));
	refuse("NIC model 'ne2k_isa' is not supported", ARGS(K, "-nic", "user,model=ne2k_isa"));
	refuse("-net nic: not supported (use -nic", ARGS(K, "-net", "nic"));
	/* From --net's parser: the hostfwd rule and the MAC. */
	refuse("hostfwd 'tcp:22' is not", ARGS(K, "-nic", "user,hostfwd=tcp:22"));
	refuse("mac '52:54:00' is not six hex bytes", ARGS(K, "-nic", "user,mac=52:54:00"));
}

static void test_console_machine_misc(void **state)
{
	struct parsed p;

	(void)state;
	accepted(&p, ARGS(K, "-serial", "none"));
	assert_int_equal(p.cfg.console, CONSOLE_NONE);
	done(&p);
	accepted(&p, ARGS(K, "-display", "none", "-serial", "file:/tmp/console.log", "-parallel", "none",
			"-vga", "none", "-monitor", "none", "-serial", "null"));
	assert_int_equal(p.cfg.console, CONSOLE_FILE);
	assert_string_equal(p.cfg.console_path, "/tmp/console.log");
	done(&p);
	accepted(&p, ARGS(K, "-serial", "stdio", "-accel", "kvm", "-machine", "q35,accel=kvm",
			"-machine", "type=pc-i440fx-7.2,accel=kvm:tcg", "-M", "pc", "-cpu", "host",
			"-cpu", "max", "-cpu", "host,+x2apic", "-name", "vm1", "-L", "/usr/share/qemu",
			"-boot", "order=c", "-device", "virtio-rng-pci,rng=rng0",
			"-object", "rng-builtin,id=rng0", "--no-user-config", "--nodefaults"));
	assert_int_equal(p.cfg.console, CONSOLE_STDIO);
	assert_true(p.cfg.rng);
	done(&p);

	/* Another CPU model: the guest still gets the host's, said once. */
	parse(&p, ARGS(K, "-cpu", "qemu64,-cx16,+xsaveerptr", "-cpu", "Skylake-Client"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.log.warnings, 1);
	assert_non_null(strstr(p.log.last_warning, "the host's CPU (as -cpu host)"));
	done(&p);

	/* The QEMU command this project's own network benchmark runs. */
	parse(&p, ARGS("-enable-kvm", "-M", "microvm,pcie=on", "-cpu", "qemu64,-cx16,+xsaveerptr",
		       "-smp", "1", "-m", "256M", "-name", "bench,debug-threads=on", "-nodefaults",
		       "-no-user-config", "-display", "none", "-serial", "stdio", "-monitor", "none",
		       "-kernel", "vmlinux", "-initrd", "initrd.cpio", "-append", "console=ttyS0 ip=:::::eth0:dhcp",
		       "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:35019-:5001",
		       "-device", "virtio-net-pci,netdev=n0"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.log.errors, 0);
	assert_int_equal(p.log.warnings, 1);	/* -cpu qemu64 */
	assert_int_equal(p.cfg.nr_nets, 1);
	assert_int_equal(p.cfg.nets[0].fwd[0].host_port, 35019);
	assert_int_equal(p.cfg.nets[0].fwd[0].host_addr, htonl(0x7f000001));
	assert_int_equal(p.cfg.nets[0].fwd[0].guest_port, 5001);
	done(&p);

	refuse("-serial pty: not supported", ARGS(K, "-serial", "pty"));
	refuse("bootvm has one serial port", ARGS(K, "-serial", "stdio", "-serial", "file:/tmp/x"));
	refuse("-display gtk: not supported", ARGS(K, "-display", "gtk"));
	refuse("-monitor stdio: not supported", ARGS(K, "-monitor", "stdio"));
	refuse("-accel tcg: not supported (bootvm runs on KVM only", ARGS(K, "-accel", "tcg"));
	refuse("-machine tcg: not supported", ARGS(K, "-machine", "pc,accel=tcg"));
	refuse("-M virt: not supported", ARGS(K, "-M", "virt"));
	refuse("-object memory-backend-ram: not supported", ARGS(K, "-object", "memory-backend-ram,id=m,size=1G"));
	refuse("-device virtio-gpu-pci: not supported", ARGS(K, "-device", "virtio-gpu-pci"));
	refuse("-kernel is required, or a -drive", ARGS("-m", "256M"));
	refuse("-initrd needs -kernel", ARGS("-initrd", "i.cpio", "-hda", "disk.img"));
}

static void test_unsupported_options(void **state)
{
	static const char *const options[] = {
		"-snapshot", "-daemonize", "-S", "-s", "-no-acpi", "-no-shutdown", "-usb", "-full-screen",
		"--snapshot", "-enable-fips", "-nodefconfig", "-x",
	};
	static const char *const with_value[] = {
		"-cdrom", "-qmp", "-chardev", "-fsdev", "-virtfs", "-gdb", "-pidfile", "-incoming",
		"-loadvm", "-global", "-rtc", "-k", "-smbios", "-numa", "-mem-path", "-fda", "-mon",
		"-sandbox", "-add-fd", "-trace", "-D", "-d", "-icount", "-overcommit", "-uuid",
	};
	char needle[64];

	(void)state;
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		snprintf(needle, sizeof(needle), "option '%s' is not supported by bootvm", options[i]);
		refuse(needle, ARGS(K, options[i]));
	}
	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
		snprintf(needle, sizeof(needle), "option '%s' is not supported by bootvm", with_value[i]);
		refuse(needle, ARGS(K, with_value[i], "x"));
	}
	refuse("option '-kernel' needs a value", ARGS("-kernel"));
	refuse("option '--append' needs a value", ARGS(K, "--append"));
}

/* -v: what was accepted and not needed is said, once each, at info level. */
static void test_verbose_notes(void **state)
{
	struct parsed p;

	(void)state;
	parse(&p, ARGS(K, "-no-reboot"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.log.infos, 0);	/* the notes wait for -v */
	done(&p);

	parse(&p, ARGS(K, "-v", "-no-reboot", "-no-reboot"));
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.opts.verbose, 1);
	assert_int_equal(p.log.infos, 1);
	assert_string_equal(p.log.last_info, "qemu: -no-reboot: bootvm always ends when the guest resets");
	done(&p);

	parse(&p, ARGS(K, "-smp", "cores=2,threads=2", "-v"));
	assert_int_equal(p.log.infos, 1);
	assert_non_null(strstr(p.log.last_info, "one socket of single-thread cores"));
	done(&p);

	parse(&p, ARGS(K, "-drive", "file=a.img", "-v"));
	assert_non_null(strstr(p.log.last_info, "the guest gets virtio-blk (/dev/vdX), not IDE"));
	done(&p);
}

/* Through $BOOTVM: `bootvm qemu`, and argv[0] qemu-system-x86_64. */
static void test_binary(void **state)
{
	struct helper_result r;
	const char *bootvm = getenv("BOOTVM");
	char *dir = helper_tmpdir("qemu-cli"), *link;

	(void)state;
	assert_non_null(bootvm);
	link = helper_asprintf("%s/qemu-system-x86_64", dir);
	assert_int_equal(symlink(bootvm, link), 0);

	helper_run_bootvm(&r, "qemu", ARGS("--help"), 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: bootvm qemu"));
	for (const char *const *s = ARGS("-kernel", "-drive", "-netdev", "-nic", "-smp", "-m SIZE",
					 "-serial", "-machine", "e1000", "virtio-rng-pci"); *s; s++)
		if (!strstr(r.out, *s))
			fail_msg("bootvm qemu --help does not list %s", *s);
	helper_result_free(&r);

	helper_run_bootvm(&r, "qemu", ARGS("-kernel", "x", "-snapshot"), 0);
	helper_expect_error(&r, 2, "qemu: option '-snapshot' is not supported by bootvm");
	helper_result_free(&r);

	helper_run(&r, NULL, ARGS(link, "-h"), 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: bootvm qemu"));
	helper_result_free(&r);
	helper_run(&r, NULL, ARGS(link, "-version"), 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "qemu-system-x86_64"));
	helper_result_free(&r);
	helper_run(&r, NULL, ARGS(link, "-kernel", "x", "-accel", "tcg"), 0);
	helper_expect_error(&r, 2, "-accel tcg: not supported");
	helper_result_free(&r);
	/* A file that is not there: bootvm's error, status 1 as bootvm run's. */
	helper_run(&r, NULL, ARGS(link, "-kernel", "/nonexistent/bzImage", "-nographic"), 0);
	helper_expect_error(&r, 1, "/nonexistent/bzImage");
	helper_result_free(&r);

	free(link);
	assert_int_equal(helper_tmpdir_remove(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tutorial_command),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_smp),
		cmocka_unit_test(test_drives),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_console_machine_misc),
		cmocka_unit_test(test_unsupported_options),
		cmocka_unit_test(test_verbose_notes),
		cmocka_unit_test(test_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
