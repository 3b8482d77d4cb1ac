#pragma once
/* Intrusive doubly linked list (circular, with a sentinel head). */
#include <stdbool.h>
#include <stddef.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct list_node {
	struct list_node *prev, *next;
};

struct list_head {
	struct list_node n;
};

#define LIST_HEAD_INIT(h) { { &(h).n, &(h).n } }

static inline void list_init(struct list_head *h)
{
	h->n.prev = h->n.next = &h->n;
}

/* A node that is on no list points at itself. */
static inline void list_node_init(struct list_node *n)
{
	n->prev = n->next = n;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->n.next == &h->n;
}

static inline bool list_node_linked(const struct list_node *n)
{
	return n->next != n;
}

static inline void list_add_tail(struct list_head *h, struct list_node *n)
{
	n->prev = h->n.prev;
	n->next = &h->n;
	h->n.prev->next = n;
	h->n.prev = n;
}

static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_node_init(n);
}

#define list_first(h) ((h)->n.next)
#define list_for_each(pos, h) \
	for (struct list_node *pos = (h)->n.next; pos != &(h)->n; pos = pos->next)
/* Safe against removal of pos. */
#define list_for_each_safe(pos, tmp, h) \
	for (struct list_node *pos = (h)->n.next, *tmp = pos->next; pos != &(h)->n; \
	     pos = tmp, tmp = pos->next)
