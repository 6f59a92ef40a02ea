/*
 * Definitions: the control plane's state as JSON, in RabbitMQ's definitions format so that
 * a RabbitMQ export imports where the concepts match, plus tachyon's own keys.
 *
 *   users            name, password_hash, hashing_algorithm, tags (string "a,b" or list)
 *                    (algorithms: tachyon_scram_sha256 (ours, the export's),
 *                    rabbit_password_hashing_sha256 / _sha512 / _md5 (RabbitMQ's))
 *   vhosts           name
 *   permissions      user, vhost, configure, write, read
 *   topic_permissions user, vhost, exchange, write, read
 *   policies         vhost, name, pattern, apply-to, definition, priority
 *   exchanges        name, vhost, type, durable, auto_delete, internal, arguments
 *   queues           name, vhost, durable, auto_delete, arguments
 *   bindings         source, vhost, destination, destination_type, routing_key, arguments
 *   mqtt_acls        (tachyon) user ("" = everyone), pattern, access (read|write|readwrite|deny)
 *
 * Import is additive (what exists is replaced when the file defines it, nothing is deleted),
 * RabbitMQ's behaviour; unknown top-level keys (parameters, global_parameters, rabbit_version,
 * ...) are ignored; an entry that cannot be applied fails the import with a message naming it,
 * after the entries before it were applied (as RabbitMQ). Exchanges, queues and bindings go to
 * the AMQP broker (tq_amqp_admin.h). Export writes everything, with our own secrets.
 *
 * Control thread only (inside tq_cplane_call or at start): it changes the control plane's
 * state and publishes it (tq_cplane_changed) once at the end.
 */
#ifndef TQ_DEFS_H
#define TQ_DEFS_H

#include <stddef.h>

/* Import @len bytes of JSON. 0 or -errno with a message in @err. */
int tq_defs_import(const char *json, size_t len, char *err, size_t errlen);
/* Import the file at @path. */
int tq_defs_import_file(const char *path, char *err, size_t errlen);

/*
 * Export everything as JSON into a malloc'd string (*@out, the caller frees; *@len its
 * length). 0 or -ENOMEM.
 */
int tq_defs_export(char **out, size_t *len);
/* Export to the file at @path (written to a temporary file, then renamed). 0 or -errno. */
int tq_defs_export_file(const char *path, char *err, size_t errlen);

#endif
