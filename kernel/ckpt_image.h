#pragma once
/* A captured process (kernel/ckpt_proc.h) as state-file records
 * (state/state.h, docs/STATEFILE.md): one `task`, then its `thread`s,
 * `mapping`s, `pages` runs (the contents follow as the record's data run)
 * and `fd`s. Register sets travel as `bin` fields, checked for their exact
 * size on the way in: a state file restores only on the same kernel and
 * architecture (the metadata says which; restore compares). */
#include "kernel/ckpt_proc.h"
#include "kernel/ckpt_tmpfs.h"
#include "state/state.h"

/* Writes p's records. */
int ckpt_image_put(struct sf_writer *w, const struct ckpt_proc *p, struct cv_error *err);
/* Writes a `pipe` record (before every task: their fds name it). */
int ckpt_image_put_pipe(struct sf_writer *w, const struct ckpt_pipe *cp, struct cv_error *err);

/* Reassembles processes from a state file's events. Feed every event of
 * sf_read_fd to ckpt_image_event; ckpt_image_done checks what was read is
 * whole. The loader owns the processes until the caller takes them. */
struct ckpt_loader {
	struct ckpt_proc *procs;
	size_t nprocs, cap;
	struct ckpt_pages *cur_pages; /* the run whose data is arriving */
	char container_id[256];
	struct ckpt_tmpfs tmpfs; /* `file` records: the tmpfs contents */
	struct ckpt_file *cur_file; /* the file whose data is arriving */
	struct ckpt_pipe *pipes;    /* `pipe` records, bytes held */
	size_t npipes;
	struct ckpt_pipe *cur_pipe; /* the pipe whose data is arriving */
	bool skip_data; /* set by the caller: check the runs, keep no contents (restore
			 * streams them from the file again, ckpt_image_stream_pages) */
	uint64_t keep_max; /* with skip_data: page contents are kept anyway while their
			    * total stays within this many bytes (a small file restores
			    * from memory); the runs after are streamed */
	uint64_t kept;     /* page bytes kept so far */
};
int ckpt_image_event(void *loader, const struct sf_event *ev, struct cv_error *err);
int ckpt_image_done(struct ckpt_loader *l, struct cv_error *err);
void ckpt_loader_free(struct ckpt_loader *l);

/* The second pass of a restore that kept no contents: reads the file
 * again through fr and hands the bytes of every page run of p that was not
 * kept to put(opaque, addr, data, len). p is the file's task-th task (from
 * 0). The runs must be exactly those of p, in order (the file may not
 * change between the passes). The read stops after p's records. */
typedef int (*ckpt_page_fn)(void *opaque, uint64_t addr, const void *data, size_t len,
			    struct cv_error *err);
int ckpt_image_stream_pages(struct sf_fd_reader *fr, const struct ckpt_proc *p, size_t task,
			    ckpt_page_fn put, void *opaque, struct cv_error *err);
