"""Check a "Save to Google Wallet" JWT independently of Kopilka.

Usage: gwallet_check.py JWT CERT_PEM
       gwallet_check.py --object OBJECT_JSON_FILE   (a LoyaltyObject sent to the REST API)

1. PyJWT verifies the RS256 signature with the public key of CERT_PEM (the service
   account's certificate) and the claims (aud "google", typ "savetowallet").
2. The loyalty class and object in the payload are validated with jsonschema against the
   LoyaltyClass and LoyaltyObject schemas of the official walletobjects v1 discovery
   document shipped in google-api-python-client, converted here to JSON Schema (each
   "$ref" to a definition; unknown properties refused; enums kept).

Prints the payload as JSON on success; exits non-zero with the reason otherwise.
"""
import json
import os
import sys

import googleapiclient
import jsonschema
import jwt
from cryptography import x509


def discovery():
    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "walletobjects.v1.json")
    with open(path) as f:
        return json.load(f)


def convert(node):
    """A discovery schema node as a JSON Schema node."""
    if "$ref" in node:
        return {"$ref": "#/definitions/" + node["$ref"]}
    out = {}
    t = node.get("type")
    if t == "any":
        return {}
    if t == "string" and node.get("format") in ("int64", "uint64"):
        # 64-bit integers travel as strings in Google's JSON, and are accepted as numbers.
        out["type"] = ["string", "integer"]
    elif t:
        out["type"] = t
    if "enum" in node:
        out["enum"] = node["enum"]
    if t == "object" or "properties" in node:
        props = node.get("properties", {})
        out["properties"] = {k: convert(v) for k, v in props.items()}
        if "additionalProperties" in node:
            out["additionalProperties"] = convert(node["additionalProperties"])
        else:
            out["additionalProperties"] = False
    if t == "array":
        out["items"] = convert(node.get("items", {}))
    return out


def schema_for(doc, name):
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {k: convert(v) for k, v in doc["schemas"].items()},
        "$ref": "#/definitions/" + name,
    }


def main():
    if sys.argv[1] == "--object":
        with open(sys.argv[2]) as f:
            obj = json.load(f)
        jsonschema.validate(obj, schema_for(discovery(), "LoyaltyObject"))
        print(json.dumps(obj))
        return
    token, cert_path = sys.argv[1], sys.argv[2]
    with open(cert_path, "rb") as f:
        key = x509.load_pem_x509_certificate(f.read()).public_key()
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="google", options={"require": ["iss", "aud", "iat"]})
    if claims.get("typ") != "savetowallet":
        sys.exit("typ is %r, not savetowallet" % claims.get("typ"))
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "RS256":
        sys.exit("alg is %r" % header.get("alg"))
    doc = discovery()
    payload = claims["payload"]
    for kind, schema in (("loyaltyClasses", "LoyaltyClass"), ("loyaltyObjects", "LoyaltyObject")):
        items = payload.get(kind) or []
        if not items:
            sys.exit("payload has no %s" % kind)
        for item in items:
            jsonschema.validate(item, schema_for(doc, schema))
    obj = payload["loyaltyObjects"][0]
    for required in ("id", "classId", "state"):
        if required not in obj:
            sys.exit("the object has no %s" % required)
    if obj["classId"] != payload["loyaltyClasses"][0]["id"]:
        sys.exit("the object's classId is not the class's id")
    print(json.dumps(claims))


if __name__ == "__main__":
    main()
