#!/usr/bin/env python3
"""Generate tq_amqp_spec.{h,c} from the machine-readable AMQP 0-9-1 spec.

    gen_amqp.py SPEC.xml OUT.h OUT.c

SPEC.xml is amqp0-9-1.stripped.extended.xml (the AMQP Working Group's stripped spec with
RabbitMQ's extensions: confirms, basic.nack, exchange-to-exchange bindings, server-sent
basic.ack/nack/cancel, connection.blocked/unblocked, connection.update-secret).

What comes out is data, not code: for every method an argument struct, a descriptor table
(name, ids, flags, and each field's wire type and offset in the struct), typed encoder
wrappers; the basic content properties as a struct and a descriptor table; the constants
(frame types, frame-end, reply codes with their soft/hard class). The one decoder and the
one encoder that walk these tables are hand-written in tq_amqp_codec.c, so every method goes
through the same bounds-checked code (tested and fuzzed once) instead of 60 generated copies.
"""
import sys
import xml.etree.ElementTree as ET

# Wire types of the spec's basic domains; the C enum names below follow this order.
TYPES = ["bit", "octet", "short", "long", "longlong", "timestamp", "shortstr", "longstr", "table"]
CTYPE = {
    "bit": "bool",
    "octet": "uint8_t",
    "short": "uint16_t",
    "long": "uint32_t",
    "longlong": "uint64_t",
    "timestamp": "uint64_t",
    "shortstr": "struct tq_amqp_str",
    "longstr": "struct tq_amqp_str",
    "table": "struct tq_amqp_table",
}
C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool",
}


def ident(name):
    s = name.replace("-", "_").replace(".", "_")
    return s + "_" if s in C_KEYWORDS else s


def upper(name):
    return ident(name).upper().rstrip("_")


class Field:
    def __init__(self, name, typ, reserved):
        self.name, self.type, self.reserved = name, typ, reserved
        self.c = ident(name)


class Method:
    def __init__(self, cls, el, domains):
        self.cls = cls
        self.name = el.get("name")
        self.index = int(el.get("index"))
        self.synchronous = el.get("synchronous") == "1"
        self.content = el.get("content") == "1"
        self.deprecated = el.get("deprecated") == "1"
        # chassis "server": the server implements it, so the client sends it (and v.v.)
        chassis = {c.get("name") for c in el.findall("chassis")}
        self.by_client = "server" in chassis
        self.by_server = "client" in chassis
        self.responses = [r.get("name") for r in el.findall("response")]
        self.fields = [field(f, domains) for f in el.findall("field")]
        self.full = "%s.%s" % (cls.name, self.name)
        self.c = "%s_%s" % (ident(cls.name).rstrip("_"), ident(self.name).rstrip("_"))
        self.up = self.c.upper()
        self.id = cls.index << 16 | self.index


class Class:
    def __init__(self, el, domains):
        self.name = el.get("name")
        self.index = int(el.get("index"))
        self.c = ident(self.name).rstrip("_")
        self.props = [field(f, domains) for f in el.findall("field")]
        self.methods = [Method(self, m, domains) for m in el.findall("method")]


def field(el, domains):
    typ = el.get("type") or domains[el.get("domain")]
    if typ not in CTYPE:
        sys.exit("gen_amqp: field %s has unknown type %s" % (el.get("name"), typ))
    return Field(el.get("name"), typ, el.get("reserved") == "1")


def load(path):
    root = ET.parse(path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    for name, typ in list(domains.items()):  # a domain may name another domain
        while typ not in CTYPE and typ in domains and domains[typ] != typ:
            typ = domains[typ]
        domains[name] = typ
    consts = [(c.get("name"), int(c.get("value")), c.get("class")) for c in root.findall("constant")]
    classes = [Class(c, domains) for c in root.findall("class")]
    ver = (int(root.get("major")), int(root.get("minor")), int(root.get("revision")), int(root.get("port")))
    return ver, consts, classes


def check(classes):
    if [x.name for x in classes if x.props] != ["basic"]:
        sys.exit("gen_amqp: expected content properties on basic only")
    ids = set()
    for c in classes:
        for m in c.methods:
            if m.id in ids:
                sys.exit("gen_amqp: duplicate method id %s" % m.full)
            ids.add(m.id)
            names = {x.name for x in c.methods}
            for r in m.responses:
                if r not in names:
                    sys.exit("gen_amqp: %s answers with unknown %s" % (m.full, r))
        for p in c.props:
            if p.type == "bit":
                sys.exit("gen_amqp: bit properties are not supported")
        if len(c.props) > 15:
            sys.exit("gen_amqp: more than 15 properties need a second flag word")


HEADER = """/*
 * Generated by proto/amqp/gen_amqp.py from proto/amqp/amqp0-9-1.stripped.extended.xml
 * (AMQP 0-9-1, Copyright (c) 2009 AMQP Working Group, with RabbitMQ's extensions; BSD-3,
 * see the XML's header): do not edit, change the generator.
 */
"""


def gen_h(ver, consts, classes):
    o = [HEADER, "#ifndef TQ_AMQP_SPEC_H\n#define TQ_AMQP_SPEC_H\n",
         "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <sys/types.h>\n"]
    o.append("#define TQ_AMQP_VERSION_MAJOR %d\n#define TQ_AMQP_VERSION_MINOR %d\n"
             "#define TQ_AMQP_VERSION_REVISION %d\n#define TQ_AMQP_PORT %d\n" % ver)
    o.append("/* constants: frame types and sizes, reply codes (see tq_amqp_reply_is_hard()) */")
    for name, val, cls in consts:
        o.append("#define TQ_AMQP_%s %d%s" % (upper(name), val, " /* %s */" % cls if cls else ""))
    o.append("""
/* A span into the input (decoding) or into caller memory (encoding): shortstr or longstr. */
struct tq_amqp_str {
	const uint8_t *p;
	uint32_t len; /* at most 255 for a shortstr */
};

/* A field table's contents, without its 4-byte size (validated when decoded). */
struct tq_amqp_table {
	const uint8_t *p;
	uint32_t len;
};

/* wire types of method arguments and content properties */
enum tq_amqp_type {""")
    for t in TYPES:
        o.append("\tTQ_AMQP_T_%s," % t.upper())
    o.append("""};

struct tq_amqp_field_info {
	const char *name;   /* as in the spec: "routing-key" */
	uint16_t offset;    /* in the argument (or property) struct */
	uint8_t type;       /* enum tq_amqp_type */
	bool reserved;      /* "reserved-1": sent as zero or empty, ignored when received */
};

#define TQ_AMQP_BY_CLIENT 0x01 /* the client may send it (the spec's "server" chassis) */
#define TQ_AMQP_BY_SERVER 0x02 /* the server may send it ("client" chassis) */

struct tq_amqp_method_info {
	const char *name;   /* "basic.publish" */
	uint32_t id;        /* TQ_AMQP_ID(class_id, method_id) */
	uint16_t class_id;
	uint16_t method_id;
	uint8_t nfields;
	uint8_t sent_by;    /* TQ_AMQP_BY_* */
	bool synchronous;   /* expects a response (or is one) */
	bool content;       /* followed by a content header and body frames */
	bool deprecated;
	uint16_t args_size; /* sizeof the argument struct; 0 without arguments */
	uint32_t responses[2]; /* ids of the methods that answer it; 0 ends the list */
	const struct tq_amqp_field_info *fields;
};

struct tq_amqp_class_info {
	const char *name;
	uint16_t class_id;
	uint8_t nprops;     /* content properties; flag bit (15 - i) marks props[i] */
	const struct tq_amqp_field_info *props;
};

#define TQ_AMQP_ID(class_id, method_id) ((uint32_t)(class_id) << 16 | (uint32_t)(method_id))
#define TQ_AMQP_ID_CLASS(id) ((uint16_t)((id) >> 16))
#define TQ_AMQP_ID_METHOD(id) ((uint16_t)(id))
""")
    o.append("/* class ids */")
    for c in classes:
        o.append("#define TQ_AMQP_CLASS_%s %d" % (c.c.upper(), c.index))
    o.append("\n/* method ids: TQ_AMQP_ID(class, method) */")
    for c in classes:
        for m in c.methods:
            o.append("#define TQ_AMQP_%s 0x%08xu /* %s %d.%d */" % (m.up, m.id, m.full, c.index, m.index))
    o.append("\n/* positions in tq_amqp_methods[] */\nenum tq_amqp_method_idx {")
    for c in classes:
        for m in c.methods:
            o.append("\tTQ_AMQP_IDX_%s," % m.up)
    o.append("\tTQ_AMQP_METHOD_COUNT,\n};\n")
    o.append("/* Arguments of each method with arguments; spans point into the frame payload. */")
    for c in classes:
        for m in c.methods:
            if not m.fields:
                continue
            o.append("struct tq_amqp_%s { /* %s */" % (m.c, m.full))
            for f in m.fields:
                o.append("\t%s %s; /* %s%s */" % (CTYPE[f.type], f.c, f.type, ", reserved" if f.reserved else ""))
            o.append("};\n")
    o.append("union tq_amqp_args {")
    for c in classes:
        for m in c.methods:
            if m.fields:
                o.append("\tstruct tq_amqp_%s %s;" % (m.c, m.c))
    o.append("};\n")
    for c in classes:
        if not c.props:
            continue
        o.append("/* %s content properties: the flag word bit of each, as sent */" % c.name)
        for i, p in enumerate(c.props):
            o.append("#define TQ_AMQP_%s_%s_FLAG 0x%04xu" % (c.c.upper(), upper(p.name), 1 << (15 - i)))
        o.append("#define TQ_AMQP_%s_FLAGS_ALL 0x%04xu" % (c.c.upper(), sum(1 << (15 - i) for i in range(len(c.props)))))
        o.append("\nstruct tq_amqp_%s_props {" % c.c)
        o.append("\tuint16_t flags; /* TQ_AMQP_%s_*_FLAG: which of the fields below are present */" % c.c.upper())
        for p in c.props:
            o.append("\t%s %s; /* %s */" % (CTYPE[p.type], p.c, p.type))
        o.append("};\n")
    o.append("""extern const struct tq_amqp_method_info tq_amqp_methods[TQ_AMQP_METHOD_COUNT];

/* The method, or NULL when the class or the method is unknown. */
const struct tq_amqp_method_info *tq_amqp_method_find(uint16_t class_id, uint16_t method_id);

/* The class, or NULL when unknown. */
const struct tq_amqp_class_info *tq_amqp_class_find(uint16_t class_id);

/* The spec's name of a reply code in upper case ("NOT_FOUND"), or NULL. */
const char *tq_amqp_reply_name(uint16_t code);

/*
 * 1 when the reply code is a hard error (the connection closes), 0 for a soft error (the
 * channel closes), -1 when @code is not an error code of the spec (200 included).
 */
int tq_amqp_reply_is_hard(uint16_t code);

/*
 * Encode a whole method frame (header, class and method ids, arguments, frame-end) for
 * @channel into @buf; @args points to the method's argument struct (NULL when it has none).
 * Returns the frame length, -ENOSPC when @cap is too small (nothing useful is written),
 * -EINVAL for a shortstr over 255 bytes or a payload over 2^32 - 1. Defined in
 * tq_amqp_codec.c; the typed wrappers below call it.
 */
ssize_t tq_amqp_method_encode(uint8_t *buf, size_t cap, uint16_t channel,
			      const struct tq_amqp_method_info *mi, const void *args);
""")
    o.append("/* typed encoders, one per method */")
    for c in classes:
        for m in c.methods:
            if m.fields:
                o.append("static inline ssize_t\ntq_amqp_encode_%s(uint8_t *buf, size_t cap, uint16_t channel,\n"
                         "\t\t\tconst struct tq_amqp_%s *args)\n{\n"
                         "\treturn tq_amqp_method_encode(buf, cap, channel, &tq_amqp_methods[TQ_AMQP_IDX_%s], args);\n}\n"
                         % (m.c, m.c, m.up))
            else:
                o.append("static inline ssize_t\ntq_amqp_encode_%s(uint8_t *buf, size_t cap, uint16_t channel)\n{\n"
                         "\treturn tq_amqp_method_encode(buf, cap, channel, &tq_amqp_methods[TQ_AMQP_IDX_%s], NULL);\n}\n"
                         % (m.c, m.up))
    o.append("#endif")
    return "\n".join(o) + "\n"


def gen_c(consts, classes):
    o = [HEADER, '#include "proto/amqp/tq_amqp_spec.h"\n']
    for c in classes:
        for m in c.methods:
            if not m.fields:
                continue
            o.append("static const struct tq_amqp_field_info fields_%s[] = {" % m.c)
            for f in m.fields:
                o.append('\t{"%s", offsetof(struct tq_amqp_%s, %s), TQ_AMQP_T_%s, %s},'
                         % (f.name, m.c, f.c, f.type.upper(), "true" if f.reserved else "false"))
            o.append("};\n")
        if c.props:
            o.append("static const struct tq_amqp_field_info props_%s[] = {" % c.c)
            for p in c.props:
                o.append('\t{"%s", offsetof(struct tq_amqp_%s_props, %s), TQ_AMQP_T_%s, false},'
                         % (p.name, c.c, p.c, p.type.upper()))
            o.append("};\n")
    o.append("const struct tq_amqp_method_info tq_amqp_methods[TQ_AMQP_METHOD_COUNT] = {")
    for c in classes:
        by_name = {m.name: m for m in c.methods}
        for m in c.methods:
            sent = " | ".join(x for x, y in (("TQ_AMQP_BY_CLIENT", m.by_client), ("TQ_AMQP_BY_SERVER", m.by_server)) if y) or "0"
            resp = ", ".join("TQ_AMQP_%s" % by_name[r].up for r in m.responses) or "0"
            o.append("\t[TQ_AMQP_IDX_%s] = {" % m.up)
            o.append('\t\t.name = "%s",' % m.full)
            o.append("\t\t.id = TQ_AMQP_%s," % m.up)
            o.append("\t\t.class_id = %d,\n\t\t.method_id = %d," % (c.index, m.index))
            o.append("\t\t.nfields = %d,\n\t\t.sent_by = %s," % (len(m.fields), sent))
            o.append("\t\t.synchronous = %s,\n\t\t.content = %s,\n\t\t.deprecated = %s,"
                     % tuple("true" if x else "false" for x in (m.synchronous, m.content, m.deprecated)))
            o.append("\t\t.args_size = %s," % ("sizeof(struct tq_amqp_%s)" % m.c if m.fields else "0"))
            o.append("\t\t.responses = {%s}," % resp)
            o.append("\t\t.fields = %s," % ("fields_%s" % m.c if m.fields else "NULL"))
            o.append("\t},")
    o.append("};\n")
    o.append("static const struct tq_amqp_class_info classes[] = {")
    for c in classes:
        o.append('\t{"%s", %d, %d, %s},' % (c.name, c.index, len(c.props), "props_%s" % c.c if c.props else "NULL"))
    o.append("};\n")
    o.append("const struct tq_amqp_method_info *\ntq_amqp_method_find(uint16_t class_id, uint16_t method_id)\n{")
    o.append("\tswitch (TQ_AMQP_ID(class_id, method_id)) {")
    for c in classes:
        for m in c.methods:
            o.append("\tcase TQ_AMQP_%s:\n\t\treturn &tq_amqp_methods[TQ_AMQP_IDX_%s];" % (m.up, m.up))
    o.append("\tdefault:\n\t\treturn NULL;\n\t}\n}\n")
    o.append("const struct tq_amqp_class_info *\ntq_amqp_class_find(uint16_t class_id)\n{")
    o.append("\tswitch (class_id) {")
    for i, c in enumerate(classes):
        o.append("\tcase TQ_AMQP_CLASS_%s:\n\t\treturn &classes[%d];" % (c.c.upper(), i))
    o.append("\tdefault:\n\t\treturn NULL;\n\t}\n}\n")
    replies = [(n, v, cls) for n, v, cls in consts if cls in ("soft-error", "hard-error")]
    o.append("const char *\ntq_amqp_reply_name(uint16_t code)\n{\n\tswitch (code) {")
    for n, v, cls in [c for c in consts if c[0] == "reply-success"] + replies:
        o.append('\tcase %d:\n\t\treturn "%s";' % (v, upper(n)))
    o.append("\tdefault:\n\t\treturn NULL;\n\t}\n}\n")
    o.append("int\ntq_amqp_reply_is_hard(uint16_t code)\n{\n\tswitch (code) {")
    for cls, ret in (("hard-error", 1), ("soft-error", 0)):
        for n, v, c in replies:
            if c == cls:
                o.append("\tcase %d: /* %s */" % (v, upper(n)))
        o.append("\t\treturn %d;" % ret)
    o.append("\tdefault:\n\t\treturn -1;\n\t}\n}")
    return "\n".join(o) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gen_amqp.py SPEC.xml OUT.h OUT.c")
    ver, consts, classes = load(sys.argv[1])
    check(classes)
    with open(sys.argv[2], "w") as f:
        f.write(gen_h(ver, consts, classes))
    with open(sys.argv[3], "w") as f:
        f.write(gen_c(consts, classes))


if __name__ == "__main__":
    main()
