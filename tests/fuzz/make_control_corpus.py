#!/usr/bin/env python3
"""Write the seed corpora of the control plane's drivers under tests/fuzz/corpus/ (committed
as files): scram/ (fuzz_scram.c), policy/ (fuzz_policy.c) and acl/ (fuzz_acl.c). Each
driver's header comment says how its input is laid out.

The SCRAM exchanges are computed here (hashlib, hmac) for the store fuzz_scram.c builds:
user "user" / "pencil" and "a,b=c" / "p,w=d" with the salt FIXED_SALT at one iteration, the
server nonce fixed to RFC 7677's. Those constants are shared with the driver; change both
together. The arithmetic is checked against RFC 7677's example before anything is written.

Re-run after changing a seed: python3 tests/fuzz/make_control_corpus.py
"""
import base64
import hashlib
import hmac
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- SCRAM ----------------------------------------------------------------------------

SERVER_NONCE = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
FIXED_SALT = b"tachyon-fuzz-slt"
FIXED_CNONCE = b"rOprNGfwEbeRWgbNEkqO"
FIXED_FIRST = b"n,,n=user,r=" + FIXED_CNONCE
MODE_SPLIT, MODE_FINAL, MODE_COMPLETE = b"\x00", b"\x01", b"\x02"


def b64(b):
    return base64.b64encode(b)


def keys(password, salt, iterations=1):
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return client, hashlib.sha256(client).digest(), server


def server_first(cnonce, salt=FIXED_SALT, iterations=1):
    return b"r=" + cnonce + SERVER_NONCE + b",s=" + b64(salt) + b",i=%d" % iterations


def client_final(first, password, salt=FIXED_SALT, iterations=1, ext=b"", nonce=None,
                 cbind=None):
    """The client-final-message answering client-first @first; also server-final."""
    c1 = first.index(b",")
    c2 = first.index(b",", c1 + 1)
    gs2, bare = first[:c2 + 1], first[c2 + 1:]
    cnonce = bare.split(b",")[1][2:]
    sf = server_first(cnonce, salt, iterations)
    nonce = cnonce + SERVER_NONCE if nonce is None else nonce
    without_proof = b"c=" + b64(gs2 if cbind is None else cbind) + b",r=" + nonce + ext
    auth = bare + b"," + sf + b"," + without_proof
    client, stored, server = keys(password, salt, iterations)
    sig = hmac.new(stored, auth, hashlib.sha256).digest()
    proof = bytes(x ^ y for x, y in zip(client, sig))
    v = b"v=" + b64(hmac.new(server, auth, hashlib.sha256).digest())
    return without_proof + b",p=" + b64(proof), v


def rfc7677_self_test():
    """RFC 7677 section 3, with its salt and 4096 iterations."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    final, v = client_final(FIXED_FIRST, b"pencil", salt, 4096)
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), final
    assert v == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", v


def exchange(first, password=b"pencil", **kw):
    return MODE_SPLIT + first + b"\x00" + client_final(first, password, **kw)[0]


def fixed_final(**kw):
    return client_final(FIXED_FIRST, b"pencil", **kw)[0]


def scram_seeds():
    ok = fixed_final()
    good_proof = ok[ok.rindex(b",p=") + 3:]
    esc_first = b"n,,n=a=2Cb=3Dc,r=cnonce-escaped"
    return {
        # whole exchanges that authenticate
        "ok_n": exchange(FIXED_FIRST),
        "ok_y": exchange(b"y,,n=user,r=yNonce0123"),
        "ok_authzid": exchange(b"n,a=user,n=user,r=authzNonce"),
        "ok_first_ext": exchange(b"n,,n=user,r=extNonce,x=first-ext,y=2"),
        "ok_final_ext": exchange(b"n,,n=user,r=fextNonce", ext=b",x=final-ext"),
        "ok_escaped_name": exchange(esc_first, b"p,w=d"),
        "ok_long_nonce": exchange(b"n,,n=user,r=" + b"N" * 300),
        # exchanges that are refused at the proof (0)
        "wrong_password": exchange(FIXED_FIRST, b"pencil2"),
        "wrong_nonce": exchange(FIXED_FIRST, nonce=FIXED_CNONCE + SERVER_NONCE + b"x"),
        "short_nonce": exchange(FIXED_FIRST, nonce=FIXED_CNONCE),
        "cbind_mismatch": exchange(FIXED_FIRST, cbind=b"y,,"),
        "unknown_user": exchange(b"n,,n=nobody,r=abc", b"pencil"),
        "rabbit_user": exchange(b"n,,n=rabbit,r=abc", b"guest"),
        # malformed or refused client-first messages
        "cb_p": MODE_SPLIT + b"p=tls-server-end-point,,n=user,r=abc\x00c=" +
        b64(b"p=tls-server-end-point,,") + b",r=abc,p=" + good_proof,
        "mext": MODE_SPLIT + b"n,,m=ext,n=user,r=abc",
        "authzid_other": MODE_SPLIT + b"n,a=admin,n=user,r=abc",
        "bad_saslname": MODE_SPLIT + b"n,,n=us=3Xer,r=abc",
        "saslname_cut": MODE_SPLIT + b"n,,n=user=2,r=abc",
        "nonce_not_printable": MODE_SPLIT + b"n,,n=user,r=a\x7fb",
        "nonce_too_long": MODE_SPLIT + b"n,,n=user,r=" + b"N" * 450,
        "bad_ext_first": MODE_SPLIT + b"n,,n=user,r=abc,1=x",
        "trunc_first_1": MODE_SPLIT + b"n,",
        "trunc_first_2": MODE_SPLIT + b"n,,n=us",
        "trunc_first_3": MODE_SPLIT + b"n,,n=user,r=",
        "trunc_first_4": MODE_SPLIT + b"n,,n=user,",
        "final_without_first": MODE_SPLIT + b"n,,\x00" + fixed_final(),
        # malformed client-final messages, after a good first
        "trunc_final_proof": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok[:-10],
        "trunc_final_no_proof": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok[:ok.rindex(b",p=")],
        "trunc_final_c": MODE_SPLIT + FIXED_FIRST + b"\x00c=bi",
        "bad_b64_c": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok.replace(b"c=biws", b"c=bi!s"),
        "bad_b64_c_len": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok.replace(b"c=biws", b"c=biws="),
        "bad_b64_proof": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok[:-3] + b"*A=",
        "bad_b64_proof_bits": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok[:-2] + b"B=",
        "bad_b64_proof_nopad": MODE_SPLIT + FIXED_FIRST + b"\x00" + ok[:-1],
        "final_cb_p": MODE_SPLIT + FIXED_FIRST + b"\x00c=" + b64(b"p=tls-unique,,") +
        ok[ok.index(b",r="):],
        # only the final message, for FIXED_FIRST
        "final_ok": MODE_FINAL + ok,
        "final_ok_ext": MODE_FINAL + fixed_final(ext=b",e=1,f=two"),
        "final_wrong_proof": MODE_FINAL + ok[:-6] + b"AAAAA=",
        "final_two_proofs": MODE_FINAL + ok + b",p=" + good_proof,
        "final_proof_first": MODE_FINAL + b"p=" + good_proof + b"," + ok[:ok.rindex(b",p=")],
        "final_swapped": MODE_FINAL + b"r=" + FIXED_CNONCE + SERVER_NONCE + b",c=biws,p=" +
        good_proof,
        "final_c_only": MODE_FINAL + b"c=biws",
        "final_empty_ext": MODE_FINAL + ok.replace(b",p=", b",,p="),
        "final_empty": MODE_FINAL,
        # the driver completes these with the right proof
        "complete_user": MODE_COMPLETE + FIXED_FIRST,
        "complete_y_authzid": MODE_COMPLETE + b"y,a=user,n=user,r=x",
        "complete_escaped": MODE_COMPLETE + esc_first,
        "complete_random_salt": MODE_COMPLETE + b"n,,n=random,r=rnd",
        "complete_rabbit": MODE_COMPLETE + b"n,,n=rabbit,r=rbt,z=ext",
        "complete_unknown": MODE_COMPLETE + b"n,,n=nobody=2Cat=3Dall,r=unk",
        "complete_long_nonce": MODE_COMPLETE + b"n,,n=user,r=" + b"~" * 380,
        "complete_nul": MODE_COMPLETE + b"n,,n=user\x00,r=abc",
    }


# ---- policy definitions ---------------------------------------------------------------

PARSE, SET = b"\x00", b"\x01"


def pairs(*kv):
    return SET + b"\x00".join(kv)


def policy_seeds():
    every = (b'{"message-ttl":60000,"expires":1800000,"max-length":1000,'
             b'"max-length-bytes":1048576,"overflow":"reject-publish-dlx",'
             b'"dead-letter-exchange":"dlx","dead-letter-routing-key":"dead",'
             b'"max-priority":10,"delivery-limit":5,"alternate-exchange":"ae",'
             b'"priority-class":"bulk"}')
    return {
        "every_key": PARSE + every,
        "empty": PARSE + b"{}",
        "whitespace": PARSE + b' \t{ \n"max-length" : 10 ,\r\n "overflow":\t"drop-head" } \n',
        "escapes": PARSE + (b'{"dead-letter-exchange":'
                            b'"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u007F"}'),
        "escaped_key": PARSE + b'{"max\\u002dlength":7}',
        "utf8": PARSE + '{"dead-letter-routing-key":"é€😀"}'.encode(),
        "str_255": PARSE + b'{"alternate-exchange":"' + b"a" * 255 + b'"}',
        "str_256": PARSE + b'{"alternate-exchange":"' + b"a" * 256 + b'"}',
        "str_255_escaped": PARSE + b'{"dead-letter-exchange":"' + b"\\u0001" * 255 + b'"}',
        "ttl_max": PARSE + b'{"message-ttl":4294967295}',
        "ttl_over": PARSE + b'{"message-ttl":4294967296}',
        "count_max": PARSE + b'{"max-length":9223372036854775807}',
        "count_over": PARSE + b'{"max-length":9223372036854775808}',
        "u64_overflow": PARSE + b'{"max-length-bytes":18446744073709551616}',
        "negative": PARSE + b'{"delivery-limit":-1}',
        "minus_zero": PARSE + b'{"delivery-limit":-0}',
        "leading_zero": PARSE + b'{"max-length":010}',
        "fraction": PARSE + b'{"max-length":1.5}',
        "exponent": PARSE + b'{"max-length":1e3}',
        "expires_zero": PARSE + b'{"expires":0}',
        "priority_range": PARSE + b'{"max-priority":256}',
        "priority_zero": PARSE + b'{"max-priority":0}',
        "unknown_key": PARSE + b'{"max-lenght":10}',
        "duplicate": PARSE + b'{"max-length":1,"max-length":2}',
        "trailing_comma": PARSE + b'{"max-length":1,}',
        "missing_colon": PARSE + b'{"max-length" 1}',
        "trailing_text": PARSE + b'{"max-length":1} x',
        "two_values": PARSE + b'{"max-length":1 2}',
        "unterminated": PARSE + b'{"dead-letter-exchange":"abc',
        "bad_escape": PARSE + b'{"dead-letter-exchange":"\\x41"}',
        "u0000": PARSE + b'{"dead-letter-exchange":"\\u0000"}',
        "u0080": PARSE + b'{"dead-letter-exchange":"\\u0080"}',
        "overlong_utf8": PARSE + b'{"dead-letter-exchange":"\xc0\x80"}',
        "surrogate_utf8": PARSE + b'{"dead-letter-exchange":"\xed\xa0\x80"}',
        "raw_control": PARSE + b'{"dead-letter-exchange":"a\x01b"}',
        "string_for_number": PARSE + b'{"max-length":"10"}',
        "number_for_string": PARSE + b'{"overflow":1}',
        "bad_enum": PARSE + b'{"priority-class":"urgent"}',
        "object_value": PARSE + b'{"max-length":{}}',
        "array": PARSE + b"[]",
        "not_json": PARSE + b"max-length=10",
        "nul_inside": PARSE + b'{"max-length":1\x00}',
        "set_every_key": pairs(b"message-ttl", b"60000", b"expires", b"1", b"max-length", b"0",
                               b"max-length-bytes", b" 42 ", b"overflow", b'"reject-publish"',
                               b"dead-letter-exchange", b'"dl\\u0078"',
                               b"dead-letter-routing-key", b'"k\\n"', b"max-priority", b"255",
                               b"delivery-limit", b"9223372036854775807",
                               b"alternate-exchange", b'"ae"', b"priority-class",
                               b'"critical"', b"max-length", b"5"),
        "set_merge": pairs(b"max-length", b"10", b"max-length", b"20", b"message-ttl", b"5",
                           b"expires", b"7", b"overflow", b'"drop-head"', b"overflow",
                           b'"reject-publish-dlx"', b"dead-letter-exchange", b'"a"',
                           b"delivery-limit", b"3"),
        "set_override": pairs(b"max-length", b"10", b"x", b"y", b"max-length", b"11"),
        "set_bad": pairs(b"max-length", b"ten", b"overflow", b"drop-head", b"nope", b"1",
                         b"expires", b"0", b"max-priority", b"", b"priority-class",
                         b'"normal" x'),
        "set_strings": pairs(b"dead-letter-routing-key", b'"' + "ü".encode() * 100 + b'"',
                             b"alternate-exchange", b'"\\"\\\\\\/"'),
    }


# ---- MQTT filters ---------------------------------------------------------------------


def acl(*parts):
    return b"\x00".join(p.encode() if isinstance(p, str) else p for p in parts)


def acl_seeds():
    return {
        "spec_hash_parent": acl("sport/tennis/player1/#", "sport/tennis/player1"),
        "spec_hash_child": acl("sport/#", "sport/tennis/player1/ranking"),
        "spec_plus_empty": acl("+/+", "/finance"),
        "spec_plus_one": acl("/+", "/finance"),
        "spec_plus_not_two": acl("+", "/finance"),
        "dollar_hash": acl("#", "$SYS/#"),
        "dollar_plus": acl("+/monitor/Clients", "$SYS/monitor/Clients"),
        "dollar_literal": acl("$SYS/#", "$SYS/broker/+", "$SYS/broker/load"),
        "dollar_alone": acl("$", "+"),
        "plus_hash_covers_hash": acl("+/#", "#"),
        "slash_hash": acl("/#", "+"),
        "slash_plus_hash": acl("/+/#", "/#"),
        "hash_vs_plus_hash": acl("a/#", "a/+", "a/+/#"),
        "plus_vs_hash": acl("a/+", "a/#"),
        "three_levels": acl("a/+/c", "a/b/c", "+/b/#"),
        "empty_levels": acl("//", "+/+/+", "/+/"),
        "root_slash": acl("/", "#"),
        "bad_plus": acl("sport+", "sport/+"),
        "bad_hash_middle": acl("a/#/b", "a"),
        "bad_hash_glued": acl("a/b#", "a/#"),
        "empty_first": acl("", "a"),
        "empty_second": acl("a", ""),
        "same": acl("a/b", "a/b", "a/b"),
        "subst_markers": acl("%u/#", "%u/x", "%c/+"),
        "nul_in_third": acl("a/#", "a/+", b"a/\x00b"),
        "only_one": b"a/+/#",
        "deep": acl("+/" * 20 + "#", "a/" * 20 + "b"),
        "long_level": acl("x" * 300 + "/#", "x" * 300),
    }


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for seed, data in seeds.items():
        with open(os.path.join(d, seed), "wb") as f:
            f.write(data)


def main():
    rfc7677_self_test()
    write("scram", scram_seeds())
    write("policy", policy_seeds())
    write("acl", acl_seeds())


if __name__ == "__main__":
    main()
