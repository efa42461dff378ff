/* ataw: a tiny multiboot (v1) 32-bit guest that writes and reads the primary IDE disk
 * with ATA PIO, for the I/O error tests (tests/ataguest_test.go) against QEMU 7.2.
 * Kernel command line (-append): "lba=<first sector> n=<sectors per pass>"
 *   Every pass writes sectors lba..lba+n-1 (WRITE SECTORS 0x30, each filled with its pass
 *   number), then reads them back (READ SECTORS 0x20), for ever.
 * Progress on COM1: "ataw: pass P wr-errors W rd-errors R" after each pass; an error the
 * device reports (status ERR) is counted and the loop goes on.
 * Built by the test: gcc -m32 -ffreestanding -nostdlib -static -Wl,-T,link.ld (see link.ld).
 */
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define MB_MAGIC 0x1BADB002u
#define MB_FLAGS 0x00000003u

__attribute__((section(".multiboot"), used, aligned(4)))
static const u32 mb_header[3] = { MB_MAGIC, MB_FLAGS, (u32)-(MB_MAGIC + MB_FLAGS) };

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0,%1" :: "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0,%1" :: "a"(v), "Nd"(p)); }
static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }

static void putc_(char c) { while (!(inb(0x3f8 + 5) & 0x20)) {} outb(0x3f8, (u8)c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(u32 v) { char b[12]; int i = 0; do { b[i++] = (char)('0' + (int)(v % 10)); v /= 10; } while (v); while (i) putc_(b[--i]); }

static u32 getarg(const char *s, const char *key, u32 dflt) {
    if (!s) return dflt;
    for (const char *p = s; *p; p++) {
        if (p != s && p[-1] != ' ') continue;
        const char *k = key, *q = p;
        while (*k && *q == *k) { k++; q++; }
        if (*k || *q != '=') continue;
        q++;
        u32 v = 0; int any = 0;
        while (*q >= '0' && *q <= '9') { v = v * 10 + (u32)(*q - '0'); q++; any = 1; }
        return any ? v : dflt;
    }
    return dflt;
}

#define ATA_DATA 0x1f0
#define ATA_STATUS 0x1f7
#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_BSY 0x80

/* wait until not busy; return the status */
static u8 ata_idle(void) { u8 s; do { s = inb(ATA_STATUS); } while (s & ST_BSY); return s; }

/* wait until the device wants data (DRQ) or failed the command (ERR): QEMU's PIO read
 * shows neither busy nor DRQ while its request is in flight, and a request the VM stopped
 * on (werror/rerror=stop) is only made again after cont */
static u8 ata_drq(void) { u8 s; do { s = inb(ATA_STATUS); } while ((s & ST_BSY) || !(s & (ST_DRQ | ST_ERR))); return s; }

static void ata_cmd(u32 lba, u8 cmd) {
    ata_idle();
    outb(0x1f6, (u8)(0xE0 | ((lba >> 24) & 0x0F)));
    outb(0x1f2, 1);
    outb(0x1f3, (u8)lba);
    outb(0x1f4, (u8)(lba >> 8));
    outb(0x1f5, (u8)(lba >> 16));
    outb(ATA_STATUS, cmd);
}

/* write one sector; 0 on success, 1 when the device reports an error */
static int ata_write(u32 lba, u32 fill) {
    ata_cmd(lba, 0x30);
    u8 s = ata_drq();
    if (s & ST_ERR) return 1;
    for (int i = 0; i < 256; i++) outw(ATA_DATA, (u16)(fill + (u32)i));
    s = ata_idle();
    return (s & ST_ERR) ? 1 : 0;
}

static int ata_read(u32 lba) {
    ata_cmd(lba, 0x20);
    u8 s = ata_drq();
    if (s & ST_ERR) return 1;
    for (int i = 0; i < 256; i++) (void)inw(ATA_DATA);
    return 0;
}

void kmain(u32 magic, const u32 *mbi) {
    const char *cmd = 0;
    if (magic == 0x2BADB002u && mbi && (mbi[0] & 4)) cmd = (const char *)mbi[4];
    u32 lba = getarg(cmd, "lba", 64), n = getarg(cmd, "n", 8);
    outb(0x3f6, 0x02); /* nIEN: no interrupts, the guest polls */
    puts_("ataw: start\n");
    u32 werr = 0, rerr = 0;
    for (u32 pass = 1;; pass++) {
        for (u32 i = 0; i < n; i++) werr += (u32)ata_write(lba + i, pass << 16);
        for (u32 i = 0; i < n; i++) rerr += (u32)ata_read(lba + i);
        puts_("ataw: pass "); putu(pass); puts_(" wr-errors "); putu(werr); puts_(" rd-errors "); putu(rerr); puts_("\n");
    }
}

__asm__(
    ".pushsection .text\n"
    ".global _start\n"
    "_start:\n"
    "  cli\n"
    "  mov $stack_top, %esp\n"
    "  push %ebx\n"
    "  push %eax\n"
    "  call kmain\n"
    "1: hlt\n"
    "  jmp 1b\n"
    ".popsection\n"
    ".pushsection .bss\n"
    ".align 16\n"
    "  .skip 16384\n"
    "stack_top:\n"
    ".popsection\n"
);
