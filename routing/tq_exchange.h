/*
 * AMQP 0-9-1 exchanges, queues' names and bindings, per virtual host, with RabbitMQ's
 * semantics: the registry a session asks to declare, delete, bind and unbind, and every
 * worker asks to route a publish. A pure routing module: no EAL, no I/O; the session maps
 * methods and field tables to these calls (see struct tq_xheader) and errors to reply codes
 * (tq_exchange_reply_code).
 *
 * What a vhost holds: the default exchange "" (direct; every queue is bound to it by its
 * name, implicitly; it cannot be declared except passively, deleted, or be either end of a
 * binding), amq.direct, amq.fanout, amq.topic, amq.headers and amq.match (all durable; no
 * exchange named "amq.*" can be deleted or newly declared), the exchanges clients declare,
 * the queues the session registers (name -> the session's 64-bit id) and the bindings.
 *
 * Routing (tq_exchange_route), as RabbitMQ's rabbit_exchange:route does it: from the
 * exchange published to, each exchange reached yields its matching destinations; queues are
 * delivered once each however many paths reach them; exchanges reached through
 * exchange-to-exchange bindings are routed in turn, each at most once (cycles end); an
 * exchange whose own bindings matched nothing hands the message to its alternate exchange,
 * looked up by name at that moment (it may not exist: then nothing), itself routed at most
 * once. Types: direct (key equality), fanout (every binding), topic (the shared trie's AMQP
 * dialect: '.' words, '*' one word, '#' zero or more), headers (below).
 *
 * Headers exchanges: a binding's x-match argument is "all" (the default when absent), "any",
 * "all-with-x" or "any-with-x" (RabbitMQ 3.10); anything else, or a type other than longstr,
 * refuses the binding (-EINVAL). The binding's other arguments are the conditions; those
 * whose key starts with "x-" are ignored unless the mode is a "-with-x" one (the x-match
 * argument itself always is). all: every condition holds (so a binding with no condition
 * matches every message); any: at least one does. A condition holds when the message has a
 * header of that key (the first one, if several) and either the condition's value is void
 * (presence only) or the two values are equal as RabbitMQ's Erlang '==' finds them: integers
 * of any width and signedness and timestamps by numeric value, also against floats and
 * doubles holding the same number (I 5 == l 5 == T 5 == d 5.0), floats and doubles by value;
 * longstr and byte arrays by bytes, booleans, decimals by (scale, value); nested tables and
 * arrays by their encoded bytes (an empty table equals an empty array, as [] == [] does).
 * A void header matches only a void (presence) condition.
 *
 * Threads and memory:
 *  - Writers (vhost_add/del, declare, delete, queue_add/del, bind, unbind, walk): any
 *    thread, serialised by the registry's mutex, which is never held across a grace period.
 *    Writers malloc. Whatever they unlink (exchanges, queues, bindings, tables, arrays, whole
 *    vhosts) is freed by liburcu's call_rcu thread after a grace period; those callbacks free
 *    only their own memory, so they may run after tq_exchange_reg_destroy(). Call
 *    urcu_qsbr_barrier() (not from an online reader) to wait for them, e.g. before exit
 *    under LeakSanitizer.
 *  - Readers (route, info, queue_find): a thread registered with urcu-qsbr and online. They
 *    take no lock and never allocate; strings they hand out stay valid until the reader's
 *    next quiescent state. A reader racing a writer sees each exchange's bindings either
 *    before or after each change (never a binding that was never made); a binding present
 *    throughout is always seen.
 *  - Routing needs per-thread scratch memory for its dedup sets (struct
 *    tq_exchange_scratch, one per worker, made at boot). Grow it off the fast path (e.g. in
 *    the worker's tick) with tq_exchange_scratch_reserve() from tq_exchange_counts().
 *
 * Errors are -errno; the session answers them with these AMQP reply codes
 * (tq_exchange_reply_code), as RabbitMQ does:
 *   -ENOENT   404 NOT_FOUND          no such vhost, exchange or queue (passive declare,
 *                                     bind, unbind, route)
 *   -EPERM    403 ACCESS_REFUSED     the default exchange named where it may not be;
 *                                     declaring a new "amq.*" exchange; deleting one;
 *                                     publishing to an internal exchange
 *   -EEXIST   406 PRECONDITION_FAILED redeclared with another type, flags or alternate
 *                                     exchange
 *   -EBUSY    406 PRECONDITION_FAILED delete with if-unused of an exchange that has
 *                                     bindings as source
 *   -EINVAL   406 PRECONDITION_FAILED bad arguments: x-match, alternate-exchange not a
 *                                     longstr, a name over 255 bytes, an unknown field tag,
 *                                     a topic binding key the trie refuses (see below)
 *   -ENOTSUP  503 COMMAND_INVALID    unknown exchange type (a connection error)
 *   -ENOMEM   541 INTERNAL_ERROR     nothing changed
 * Deleting an exchange that does not exist, and unbinding a binding that does not exist,
 * are not errors (RabbitMQ answers delete-ok and unbind-ok): they return 1.
 *
 * A topic binding key with '*' or '#' inside a word ("a*b", "#x") binds that word literally,
 * as RabbitMQ does. Known difference from RabbitMQ: amq.rabbitmq.trace is not created. If the trie cannot allocate while a
 * queue or exchange is being deleted, the binding's trie entry stays behind pointing at the
 * dead destination, which readers skip and which is then never freed (counted as leaked).
 */
#ifndef TQ_EXCHANGE_H
#define TQ_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Names (vhosts, exchanges, queues) and binding keys are shortstr: at most this long. */
#define TQ_EXCHANGE_NAME_MAX 255u

enum tq_exchange_type {
	TQ_EXCHANGE_DIRECT,
	TQ_EXCHANGE_FANOUT,
	TQ_EXCHANGE_TOPIC,
	TQ_EXCHANGE_HEADERS,
};

/* exchange.declare's bits */
#define TQ_EXCHANGE_DURABLE     0x1u
#define TQ_EXCHANGE_AUTO_DELETE 0x2u /* deleted when its last binding as source goes */
#define TQ_EXCHANGE_INTERNAL    0x4u /* not published to directly, only through bindings */

/*
 * One field-table entry, decoded: a binding's argument or a message header. The tag is
 * RabbitMQ's ('t' 'b' 'B' 's' 'u' 'I' 'i' 'l' 'f' 'd' 'D' 'S' 'A' 'T' 'F' 'V' 'x', as
 * TQ_AMQP_V_* in proto/amqp/tq_amqp-t.h) and the union is laid out like struct
 * tq_amqp_value's, so the session copies tag and value from tq_amqp_table_next(). Every
 * pointer is the caller's and only read during the call (the registry copies what it keeps).
 */
struct tq_xheader {
	const char *key;
	uint16_t klen;
	uint8_t tag;
	union {
		bool b;         /* t */
		int64_t i;      /* b s I l, sign-extended */
		uint64_t u;     /* B u i T */
		float f;        /* f */
		double d;       /* d */
		struct {
			uint8_t scale;
			uint32_t value;
		} dec;          /* D */
		struct {
			const uint8_t *p;
			uint32_t len;
		} bytes;        /* S x: the string; F A: the encoded contents (no size prefix) */
	} v;
};

/* exchange.declare */
struct tq_exchange_decl {
	const char *name;
	size_t nlen;
	const char *type; /* "direct", "fanout", "topic", "headers" */
	size_t tlen;
	uint32_t flags;   /* TQ_EXCHANGE_* */
	bool passive;     /* only check that it exists (type, flags and args are ignored) */
	const struct tq_xheader *args; /* alternate-exchange (longstr) is the one read */
	uint32_t nargs;
};

enum tq_exchange_dest {
	TQ_EXCHANGE_TO_QUEUE,    /* queue.bind */
	TQ_EXCHANGE_TO_EXCHANGE, /* exchange.bind */
};

/* One binding: source exchange -> destination (queue or exchange), key, arguments. */
struct tq_exchange_binding {
	const char *src;
	size_t slen;
	const char *dst;
	size_t dlen;
	enum tq_exchange_dest kind;
	const char *key;
	size_t klen;
	const struct tq_xheader *args;
	uint32_t nargs;
};

/* What an exchange is (tq_exchange_info, tq_exchange_walk). Strings: see the functions. */
struct tq_exchange_info {
	const char *name;
	size_t nlen;
	enum tq_exchange_type type;
	uint32_t flags;
	bool has_ae;
	const char *ae; /* the alternate exchange's name when has_ae */
	size_t ae_len;
};

/* A publish to route. */
struct tq_exchange_msg {
	const char *exchange;
	size_t xlen;
	const char *key; /* routing key */
	size_t klen;
	const struct tq_xheader *headers; /* the message's headers property (headers exchanges) */
	uint32_t nheaders;
	/* Once per distinct destination queue, with the id given to tq_exchange_queue_add. */
	void (*deliver)(void *arg, uint64_t qid);
	void *arg;
};

struct tq_exchange_stats {
	uint64_t vhosts;
	uint64_t exchanges; /* with the built-in ones */
	uint64_t queues;
	uint64_t bindings;  /* explicit ones (not the default exchange's) */
	uint64_t leaked;    /* destinations left to a trie entry (header comment) */
};

struct tq_exchange_reg;
struct tq_exchange_scratch;

/* An empty registry (no vhost): NULL + errno (ENOMEM). Any thread. */
struct tq_exchange_reg *tq_exchange_reg_create(void);

/* Frees the registry and all it holds. No reader or writer may be left. NULL is a no-op. */
void tq_exchange_reg_destroy(struct tq_exchange_reg *r);

/* A vhost with its built-in exchanges: 0, -EEXIST, -EINVAL (name), -ENOMEM. Writers. */
int tq_exchange_vhost_add(struct tq_exchange_reg *r, const char *vh, size_t vlen);

/* Delete a vhost and everything in it at once: 0 or -ENOENT. Writers. */
int tq_exchange_vhost_del(struct tq_exchange_reg *r, const char *vh, size_t vlen);

/*
 * exchange.declare. Returns 0 when it was created, 1 when it existed and is equivalent (or
 * found by a passive declare); -ENOENT (vhost, or passive and missing), -ENOTSUP (type),
 * -EPERM ("" not passive; a new "amq.*" name), -EEXIST (inequivalent: type, durable,
 * auto-delete, internal or alternate exchange differ), -EINVAL, -ENOMEM. The checks come in
 * RabbitMQ's order: type, default name, equivalence if it exists, else reserved prefix and
 * arguments. Writers.
 */
int tq_exchange_declare(struct tq_exchange_reg *r, const char *vh, size_t vlen,
			const struct tq_exchange_decl *d);

/*
 * exchange.delete: 0 deleted, 1 there was none; -EPERM ("" or any "amq.*" name), -EBUSY
 * (@if_unused and it has bindings as source), -ENOENT (vhost). Its bindings go in both
 * directions; sources left without bindings that are auto-delete go too, and so on.
 * Writers.
 */
int tq_exchange_delete(struct tq_exchange_reg *r, const char *vh, size_t vlen, const char *name,
		       size_t nlen, bool if_unused);

/*
 * Register a queue under its name, with the session's id for it: 0, -EEXIST, -ENOENT
 * (vhost), -EINVAL, -ENOMEM. From then on the default exchange routes its name to it.
 * Writers.
 */
int tq_exchange_queue_add(struct tq_exchange_reg *r, const char *vh, size_t vlen,
			  const char *name, size_t nlen, uint64_t qid);

/* Unregister a queue and drop its bindings (auto-delete sources may go): 0, -ENOENT. Writers. */
int tq_exchange_queue_del(struct tq_exchange_reg *r, const char *vh, size_t vlen,
			  const char *name, size_t nlen);

/* A queue's id by name: 0 or -ENOENT. Readers' rules. */
int tq_exchange_queue_find(const struct tq_exchange_reg *r, const char *vh, size_t vlen,
			   const char *name, size_t nlen, uint64_t *qid);

/*
 * queue.bind / exchange.bind: 0 bound, 1 the same binding (source, destination, key and
 * arguments, whatever their order) already existed; -EPERM (the default exchange at either
 * end), -ENOENT (vhost, source, destination: checked in that order), -EINVAL (arguments, or
 * a topic key the trie refuses), -ENOMEM. Writers.
 */
int tq_exchange_bind(struct tq_exchange_reg *r, const char *vh, size_t vlen,
		     const struct tq_exchange_binding *b);

/*
 * queue.unbind / exchange.unbind: 0 removed, 1 there was no such binding; -EPERM, -ENOENT
 * as for bind; -ENOMEM (nothing changed). An auto-delete source left without bindings is
 * deleted. Writers.
 */
int tq_exchange_unbind(struct tq_exchange_reg *r, const char *vh, size_t vlen,
		       const struct tq_exchange_binding *b);

/*
 * Route a publish (see the header comment): m->deliver once per distinct queue id (queues
 * are told apart by the id the session gave them, so one deleted and registered again with
 * the same id while a reader routes is still delivered once). m->deliver runs inside the
 * route and must not route with the same @s (collect the ids, then act). Returns the
 * number of queues delivered to (0: unroutable, basic.return for a mandatory publish),
 * -ENOENT (vhost or exchange), -EPERM (internal exchange), -ENOBUFS (@s holds fewer queues
 * or exchanges than this publish reached: the queues delivered so far got it, the rest did
 * not; count it and reserve more). Readers' rules: no lock, no allocation.
 */
int tq_exchange_route(const struct tq_exchange_reg *r, const char *vh, size_t vlen,
		      const struct tq_exchange_msg *m, struct tq_exchange_scratch *s);

/* An exchange's description into *@out: 0 or -ENOENT. Readers' rules (strings too). */
int tq_exchange_info(const struct tq_exchange_reg *r, const char *vh, size_t vlen,
		     const char *name, size_t nlen, struct tq_exchange_info *out);

struct tq_exchange_walk_cb {
	/* every exchange of the vhost, built-in ones included; NULL: skipped */
	void (*on_exchange)(void *arg, const struct tq_exchange_info *x);
	/* every binding, the default exchange's implicit ones too (src ""); NULL: skipped */
	void (*on_binding)(void *arg, const struct tq_exchange_binding *b);
	void *arg;
};

/*
 * List a vhost for the CLI: exchanges, then bindings (by source, in the order they were
 * made; arguments sorted by key). Strings are valid during the callback only. Holds the
 * writers' mutex throughout: the callbacks must not call the registry. 0 or -ENOENT.
 */
int tq_exchange_walk(struct tq_exchange_reg *r, const char *vh, size_t vlen,
		     const struct tq_exchange_walk_cb *cb);

/*
 * Can a publish to exchange @name of @vh reach anything? False when it does not exist, is
 * internal, or has neither bindings from it nor an alternate exchange: a caller that would
 * build a message only to route it (the MQTT bridge onto amq.topic) skips the work. Readers'
 * rules; cache the answer with tq_exchange_gen, which moves with every change to @r.
 */
bool tq_exchange_may_route(const struct tq_exchange_reg *r, const char *vh, size_t vlen,
			   const char *name, size_t nlen);
uint64_t tq_exchange_gen(const struct tq_exchange_reg *r);

/* Totals over every vhost. Any thread (relaxed reads). */
void tq_exchange_counts(const struct tq_exchange_reg *r, struct tq_exchange_stats *st);

/*
 * Scratch for routing: room for @queues distinct queues and @exchanges distinct exchanges
 * per publish. NULL + errno (ENOMEM). Owned by one thread at a time; free with
 * tq_exchange_scratch_free (NULL is a no-op).
 */
struct tq_exchange_scratch *tq_exchange_scratch_create(uint32_t queues, uint32_t exchanges);
void tq_exchange_scratch_free(struct tq_exchange_scratch *s);

/* Grow @s to hold at least that many (never shrinks): 0 or -ENOMEM (unchanged). Allocates. */
int tq_exchange_scratch_reserve(struct tq_exchange_scratch *s, uint32_t queues,
				uint32_t exchanges);

/* The AMQP reply code for one of this module's errors (the table above); 541 otherwise. */
uint16_t tq_exchange_reply_code(int err);

#endif
