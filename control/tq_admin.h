/*
 * The operator's commands on the control plane, as DPDK telemetry commands under /tachyon/
 * for tachyonctl: users, vhosts, permissions, topic permissions, MQTT ACLs, policies,
 * definitions, and the AMQP broker's queues, exchanges and bindings.
 *
 * Threads: DPDK calls the callbacks on its telemetry thread (one per client socket). A
 * callback only parses its parameters there; the work (every read too: the stores are not
 * thread-safe) runs on the control thread through tq_cplane_call(), which also serialises
 * the commands. The reply is built by that work into the telemetry thread's rte_tel_data,
 * which nothing else touches while the caller waits.
 *
 * Parameters: the text after the command's first comma is a list of KEY=VALUE tokens
 * separated by single spaces, e.g.
 *
 *     /tachyon/set_permissions,user=alice vhost=%2F configure=%5Ealice%5C. write=.* read=
 *
 * KEY is lower-case letters and '_'. VALUE is percent-encoded: "%HH" (two hex digits, either
 * case) is the byte 0xHH, any other byte is itself. tachyonctl encodes every byte but
 * A-Z a-z 0-9 - . _ ~ so that spaces, commas, '%', quotes and UTF-8 in passwords, regular
 * expressions and names arrive intact; a hand-typed request may leave the others plain.
 * "key=" is the empty string. Refused: "%00" (no NUL inside a name), '%' without two hex
 * digits, a token without '=', an unknown key, a key given twice, a missing required key.
 * DPDK reads at most 1023 bytes of a request, command name included, so after encoding a
 * request must fit in that (about 330 bytes of values that are all encoded, 1000 that are
 * not); tachyonctl refuses longer ones (exit 2) instead of sending a request cut short.
 *
 * Replies (the value under the command's name):
 *   - a change: {"ok": 1, ...} or {"error": "text"}: refused, nothing changed (but a failed
 *     import keeps the entries before the one that failed, tq_defs.h); tachyonctl prints the
 *     text and exits 1. A text too long for one string also comes whole as "error_full", an
 *     array of pieces. add_user adds "default_user_removed": NAME when that user was the
 *     default one, deleted because the operator now defines users (tq_cplane.h);
 *     purge_queue adds "purged": N; export and import add "path".
 *   - a list: one array per column, row i being element i of every array, plus "total" (the
 *     rows of the whole listing) and, when the reply would not fit DPDK's 16 KiB output,
 *     "next": N: ask again with start=N for the rest. Lists that take vhost=NAME list only
 *     that vhost (all without it).
 *   - /tachyon/auth: a dict of figures.
 * Strings in replies: DPDK's telemetry holds at most 127 bytes per string and does not
 * escape bytes outside ASCII, so a byte outside 0x20..0x7e is written as "\xHH" and a value
 * longer than 127 bytes is cut to 124 and ends in "..." (export has the full text).
 *
 * Commands and their keys ('?': optional; vhost? is "/" for a change, every vhost for a list;
 * start? is the first row of a list's page):
 *   users start?                           add_user user password tags?
 *   delete_user user                       change_password user password
 *   set_user_tags user tags (comma-separated)
 *   vhosts start?                          add_vhost vhost      delete_vhost vhost
 *   permissions vhost? start?              set_permissions user vhost? configure write read
 *   clear_permissions user vhost?          topic_permissions vhost? start?
 *   set_topic_permissions user vhost? exchange write read
 *   clear_topic_permissions user vhost? exchange? (without exchange: every exchange)
 *   acls start?                            set_acl user pattern access (user "" = every
 *                                          user; access read|write|readwrite|deny)
 *   clear_acl user pattern                 policies vhost? start?
 *   set_policy name vhost? pattern definition priority? apply_to? (definition: a JSON
 *                                          object; priority 0 and apply_to "all" by default)
 *   clear_policy name vhost?               export path          import path
 *   queues vhost? start?                   exchanges vhost? start?
 *   bindings vhost? start?                 purge_queue name vhost?
 *   auth
 * export and import take a path on tachyond's filesystem (tachyonctl sends it absolute).
 * Every change publishes the new state to the workers (tq_cplane_changed()) before it is
 * answered, so the next operation of a live session already sees it. ACL rules may name
 * users that do not exist (yet); set_permissions and set_topic_permissions refuse an unknown
 * user, as RabbitMQ does. delete_user forgets the user's permissions and ACL rules too.
 */
#ifndef TQ_ADMIN_H
#define TQ_ADMIN_H

/*
 * Register the commands above. Control thread, once, after tq_cplane_start() and
 * tq_telemetry_register(). 0 or -EINVAL when DPDK refused one.
 */
int tq_admin_register(void);

#endif
