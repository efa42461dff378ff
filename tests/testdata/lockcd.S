/* tests/testdata/lockcd.S: a boot sector that locks the tray of the CD-ROM on the secondary
 * IDE channel's master (ATAPI PREVENT ALLOW MEDIUM REMOVAL, prevent=1), as an OS does for a
 * mounted disc; then idles.
 * QEMU 7.2 boots it; tlcvm's guest does the same for the workload item cdlock, so one
 * command line locks the tray in both. Built with:
 *   as --32 -o lockcd.o lockcd.S && ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o lockcd.bin lockcd.o */
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $3, %cx              /* tries: the first may meet a unit attention */
try:
    mov $0x376, %dx          /* device control: nIEN, no interrupts */
    mov $0x02, %al
    out %al, %dx
    mov $0x176, %dx          /* drive select: master */
    mov $0xa0, %al
    out %al, %dx
    call wait
    mov $0x171, %dx          /* features: PIO */
    xor %al, %al
    out %al, %dx
    mov $0x174, %dx          /* byte count 0 */
    out %al, %dx
    inc %dx
    out %al, %dx
    mov $0x177, %dx          /* PACKET */
    mov $0xa0, %al
    out %al, %dx
1:  in %dx, %al              /* wait for DRQ with BSY clear */
    test $0x80, %al
    jnz 1b
    test $0x08, %al
    jz 1b
    mov $cdb, %si
    mov $6, %bx
    mov $0x170, %dx
2:  lodsw
    out %ax, %dx
    dec %bx
    jnz 2b
    call wait
    mov $0x177, %dx
    in %dx, %al
    test $0x01, %al          /* ERR: try again */
    jz done
    loop try
done:
    mov $0x3f8, %dx
    mov $'L', %al
    out %al, %dx
3:  hlt
    jmp 3b
wait:
    mov $0x177, %dx
4:  in %dx, %al
    test $0x80, %al
    jnz 4b
    ret
cdb: .byte 0x1e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0
    .org 510
    .byte 0x55, 0xaa
