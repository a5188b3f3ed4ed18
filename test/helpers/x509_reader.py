"""An independent certificate reader for the differential test of src/x509: python
`cryptography` (Debian's python3-cryptography, its DER parser written in Rust). Reads JSON lines
{"id", "der": hex} on stdin; for each writes {"id", "ok": true, "fields": {...}} when the
certificate and every extension value read, or {"id", "ok": false, "error": "..."}.
"""
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def name_fields(name):
    """Per RDN, its attributes sorted (the order inside a multi-valued RDN carries no meaning)."""
    return [sorted([a.oid.dotted_string, a.value if isinstance(a.value, str) else a.value.hex()] for a in rdn)
            for rdn in name.rdns]


def ext_fields(e):
    v = e.value
    out = {"oid": e.oid.dotted_string, "critical": e.critical}
    if isinstance(v, x509.BasicConstraints):
        out["ca"] = v.ca
        out["pathLen"] = v.path_length
    elif isinstance(v, x509.KeyUsage):
        names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign"]
        bits = [i for i, n in enumerate(names) if getattr(v, n)]
        if v.key_agreement:
            if v.encipher_only:
                bits.append(7)
            if v.decipher_only:
                bits.append(8)
        out["bits"] = bits
    elif isinstance(v, x509.SubjectKeyIdentifier):
        out["keyId"] = v.digest.hex()
    elif isinstance(v, x509.AuthorityKeyIdentifier):
        out["keyId"] = None if v.key_identifier is None else v.key_identifier.hex()
    elif isinstance(v, x509.CRLDistributionPoints):
        uris = []
        for p in v:
            for g in p.full_name or []:
                if isinstance(g, x509.UniformResourceIdentifier):
                    uris.append(g.value)
        out["uris"] = uris
    return out


def read(der):
    c = x509.load_der_x509_certificate(der)
    key = c.public_key()
    point = None
    curve = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()
        curve = key.curve.name
    return {
        "version": c.version.value + 1,
        "serial": format(c.serial_number, "x"),
        "signatureAlgorithm": c.signature_algorithm_oid.dotted_string,
        "issuer": name_fields(c.issuer),
        "subject": name_fields(c.subject),
        "notBefore": int(c.not_valid_before.replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000),
        "notAfter": int(c.not_valid_after.replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000),
        "publicKey": point,
        "curve": curve,
        "extensions": [ext_fields(e) for e in c.extensions],
        "signature": c.signature.hex(),
        "tbs": c.tbs_certificate_bytes.hex(),
    }


for line in sys.stdin:
    if not line.strip():
        continue
    item = json.loads(line)
    try:
        out = {"id": item["id"], "ok": True, "fields": read(bytes.fromhex(item["der"]))}
    except Exception as e:  # every failure is a verdict, named by its type and message
        out = {"id": item["id"], "ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
