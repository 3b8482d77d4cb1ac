/* ELF function symbols of boot's own binary (kernel/profile_sym.h). */
#include "kernel/profile_sym.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct prof_sym {
	uintptr_t start, end;
	const char *name; /* into the mapping */
};

struct prof_syms {
	void *map;
	size_t map_len;
	uintptr_t bias; /* load address minus link address (PIE) */
	struct prof_sym *v;
	size_t n;
};

static int cmp_sym(const void *a, const void *b)
{
	const struct prof_sym *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	*(uintptr_t *)data = info->dlpi_addr; /* the main program comes first */
	return 1;
}

struct prof_syms *prof_syms_load(struct cv_error *err)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cv_errf(err, errno, "opening /proc/self/exe");
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
		close(fd);
		cv_errf(err, 0, "/proc/self/exe: not an ELF file");
		return NULL;
	}
	size_t len = (size_t)st.st_size;
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		cv_errf(err, errno, "mapping /proc/self/exe");
		return NULL;
	}
	struct prof_syms *s = calloc(1, sizeof(*s));
	if (!s) {
		munmap(map, len);
		cv_errf(err, ENOMEM, "symbols");
		return NULL;
	}
	s->map = map;
	s->map_len = len;
	dl_iterate_phdr(first_object, &s->bias);
	const unsigned char *b = map;
	const Elf64_Ehdr *eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff == 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len)
		goto bad;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > len || strs->sh_offset + strs->sh_size > len)
			goto bad;
		const Elf64_Sym *sym = (const Elf64_Sym *)(b + sh[i].sh_offset);
		size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
		s->v = calloc(nsym ? nsym : 1, sizeof(*s->v));
		if (!s->v)
			goto bad;
		for (size_t k = 0; k < nsym; k++) {
			if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_value == 0 ||
			    sym[k].st_name >= strs->sh_size)
				continue;
			struct prof_sym *ps = &s->v[s->n++];
			ps->start = sym[k].st_value + s->bias;
			ps->end = ps->start + (sym[k].st_size ? sym[k].st_size : 1);
			ps->name = (const char *)b + strs->sh_offset + sym[k].st_name;
		}
		break;
	}
	if (!s->n)
		goto bad;
	qsort(s->v, s->n, sizeof(*s->v), cmp_sym);
	return s;
bad:
	prof_syms_free(s);
	cv_errf(err, 0, "/proc/self/exe: no symbol table");
	return NULL;
}

/* Code outside the binary (a sanitizer build links its libraries
 * dynamically): the shared object's exported symbols. */
static const char *find_shared(uintptr_t pc)
{
	Dl_info info;
	if (dladdr((void *)pc, &info) && info.dli_sname)
		return info.dli_sname;
	return NULL;
}

const char *prof_syms_find(const struct prof_syms *s, uintptr_t pc)
{
	if (!s || !s->n || pc < s->v[0].start)
		return find_shared(pc);
	size_t lo = 0, hi = s->n; /* last start <= pc */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].start <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return pc < s->v[lo].end ? s->v[lo].name : find_shared(pc);
}

void prof_syms_free(struct prof_syms *s)
{
	if (!s)
		return;
	free(s->v);
	if (s->map)
		munmap(s->map, s->map_len);
	free(s);
}
