// Package dump writes guest memory dumps as QEMU 7.2's dump-guest-memory does
// (dump/dump.c, target/i386/arch_dump.c, arch_memory_mapping.c): an ELF core, or the
// kdump-compressed format (zlib, LZO or snappy pages) in makedumpfile's flattened form.
// It reads the machine through the types of source.go (Machine: blocks of guest-physical
// memory with a written test per page, and the vCPUs' registers), which the composition
// root fills from the machine; it never imports machine. Dumper keeps the state
// query-dump reports and runs one dump at a time, in the caller's goroutine or detached.
//
// # ELF core
//
// ELFCLASS64 when the first vCPU is in long mode (EM_X86_64) or a block ends above
// 4 GiB - 1 (EM_386), otherwise ELFCLASS32 (EM_386). Layout (64-bit sizes):
//
//	0       Elf64_Ehdr  e_ehsize 8 (QEMU 7.2's sizeof of a pointer), e_shnum 2, e_shstrndx 1
//	64      Elf64_Shdr  [0] null (sh_info = phnum past PN_XNUM)
//	128     Elf64_Shdr  [1] .shstrtab: SHT_STRTAB at the end of the file, 11 bytes
//	192     Elf64_Phdr  PT_NOTE
//	…       Elf64_Phdr  PT_LOAD per mapping: p_paddr, p_vaddr (virtual with paging,
//	                    else = p_paddr), p_memsz; p_offset/p_filesz where the memory of
//	                    its block lies in the file (clamped to the block)
//	notes   per vCPU: "CORE" NT_PRSTATUS (x86_64 336 bytes, or i386 144 with pr_pid =
//	        index+1); then per vCPU: "QEMU" type 0, QEMUCPUState v1 (440 bytes)
//	memory  every block within begin/length, in address order; a page never written
//	        is a hole (seek) in a seekable file, zeros in a pipe
//	end     "\0.shstrtab\0"
//
// Without paging there is one PT_LOAD per block; with paging=true the page tables of
// every vCPU from the first with paging on (4-level long mode) give the mappings, merged
// as memory_mapping.c merges them, with the lower half's virtual addresses ORed with
// 0xffff<<48 as QEMU's walk does.
//
// # kdump-compressed, flattened
//
//	flattened stream                         the file it describes (makedumpfile -R)
//	"makedumpfile\0" u64be 1 u64be 1 (4 KiB)  0x0000 disk_dump_header: "KDUMP   ", v6,
//	{u64be offset, u64be size, data}…                utsname.machine "x86_64", status
//	{-1, -1}                                         (1 zlib, 2 lzo, 4 snappy), block
//	                                                 4096, nr_cpus, bitmap blocks
//	                                          0x1000 kdump_sub_header: dump_level 1,
//	                                                 offset/size of the notes,
//	                                                 max_mapnr_64; the ELF notes
//	                                          block 1+sub_hdr_size: 1st bitmap, 2nd
//	                                                 bitmap (equal): bit pfn set for
//	                                                 every page of every block
//	                                          then   page_desc {u64 offset, u32 size,
//	                                                 u32 flags, u64 0} per dumpable
//	                                                 page, then the data: the shared
//	                                                 zero page first, then each
//	                                                 non-zero page compressed (flags =
//	                                                 method), or raw (flags 0) when it
//	                                                 does not shrink
//
// Records come in QEMU's order (headers, each bitmap buffer twice, 16 KiB descriptor and
// data caches), so the stream before the page data is byte for byte QEMU's; compressed
// pages differ in bytes (the page deflater of deflate.go: one fixed-Huffman block per page
// where QEMU's zlib sends a code per page; the LZO encoder of lzo.go) but not in format.
// QEMU 7.2 sets the bitmap bit of every page, zero or not, and gives a zero page the
// shared zero page's descriptor; so does this package. Never-written RAM is skipped a
// bitmap word at a time (WrittenFinder) and never read, so a dump does not fault in the
// guest's untouched memory.
//
// Readers (reader.go: ReadELF, Unflatten, ReadKdump with page decompression) check what
// this package writes and what QEMU writes; every length they read is bounded.
package dump
