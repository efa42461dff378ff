# A boot sector that enters long mode with tlcvm's guest page tables (PML4 at 0x10000,
# PDPT at 0x11000, one page directory at 0x12000 identity-mapping 1 GiB with 2 MiB pages)
# and halts: QEMU's guest in the dump comparisons of tests/dump_test.go.
# Build: as --32 -o longmode.o longmode.S && ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o longmode.bin longmode.o
	.intel_syntax noprefix
	.code16
	.globl _start
_start:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	mov ax, 0x1000
	mov es, ax
	xor di, di
	xor eax, eax
	mov cx, 3072
	cld
	rep stosd
	mov dword ptr es:[0x0000], 0x11003
	mov dword ptr es:[0x1000], 0x12003
	mov di, 0x2000
	mov eax, 0x83
	mov cx, 512
1:	mov dword ptr es:[di], eax
	add eax, 0x200000
	add di, 8
	dec cx
	jnz 1b
	mov eax, cr4
	or eax, 0x20
	mov cr4, eax
	mov eax, 0x10000
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 0x100
	wrmsr
	lgdt [gdtr]
	mov eax, cr0
	or eax, 0x80000001
	mov cr0, eax
	ljmp 0x08, offset long_mode
	.code64
long_mode:
	mov ax, 0x10
	mov ds, ax
	mov ss, ax
2:	hlt
	jmp 2b
	.p2align 3
gdt:	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
gdtr:	.word 23
	.long gdt
	.org 510
	.byte 0x55, 0xaa
