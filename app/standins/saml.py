"""SAML 2.0 identity provider stand-in: signed assertions over the HTTP-POST binding.

It publishes IdP metadata (entity id, HTTP-Redirect SSO endpoint, signing certificate
generated at start), accepts an SP's AuthnRequest on the redirect binding and answers with
the auto-submitting HTML form of the HTTP-POST binding, carrying a Response whose Assertion
is signed with signxml (RSA-SHA256, exclusive c14n). Tests can queue faults so the next
response is wrong in one precise way.

Run: `python -m app.standins.saml [--port N] [--email someone@example.com]`: prints one JSON
line with its metadata URL (paste that document into PUT /api/v1/tenant/sso).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import secrets
import threading
import zlib
from collections import deque
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from lxml import etree
from signxml.signer import XMLSigner

from app.standins import RunningServer, base_url, bind_loopback, serve_forever, serve_in_thread

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
LIFETIME = dt.timedelta(minutes=5)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class SamlFault(StrEnum):
    """One way to make the next SAML response invalid."""

    UNSIGNED = "unsigned"
    WRONG_SIGNATURE = "wrong_signature"  # signed by a key the SP does not trust
    TAMPERED = "tampered"  # signed, then the subject changed
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


# How far the validity window of a timing fault is moved from now.
_SHIFT = {SamlFault.EXPIRED: -4 * LIFETIME, SamlFault.NOT_YET_VALID: 3 * LIFETIME}


def self_signed(common_name: str) -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh RSA key and a self-signed certificate (PEM) for it, valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def _instant(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(
    parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str
) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    child.text = text
    return child


class SamlStandin:
    """The IdP's keys, settings and ASGI app."""

    def __init__(self, email: str = "test.user@example.com", port: int = 0) -> None:
        self.email = email
        self._key, self.cert_pem = self_signed("Cloop SAML stand-in")
        self._rogue_key, self._rogue_cert = self_signed("Cloop SAML stand-in")
        self._faults: deque[SamlFault] = deque()
        self._lock = threading.Lock()
        self._sock = bind_loopback(port)
        self.url = base_url(self._sock)
        self.entity_id = f"{self.url}/saml/metadata"
        self.sso_url = f"{self.url}/saml/sso"
        self.app = self._build_app()

    def inject_fault(self, fault: SamlFault) -> None:
        """Make the next response carry `fault`."""
        self._faults.append(fault)

    def start(self) -> RunningServer:
        """Serve on the loopback port bound at construction."""
        return serve_in_thread(self.app, self._sock)

    def metadata(self) -> str:
        """IdP metadata: what an admin pastes into the SP's SSO settings."""
        root = etree.Element(f"{{{MD}}}EntityDescriptor", entityID=self.entity_id, nsmap={"md": MD})
        idp = _el(root, MD, "IDPSSODescriptor", protocolSupportEnumeration=SAMLP)
        key_info = etree.SubElement(
            _el(idp, MD, "KeyDescriptor", use="signing"), f"{{{DS}}}KeyInfo", nsmap={"ds": DS}
        )
        der = x509.load_pem_x509_certificate(self.cert_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        _el(_el(key_info, DS, "X509Data"), DS, "X509Certificate", base64.b64encode(der).decode())
        _el(idp, MD, "NameIDFormat", EMAIL_FORMAT)
        binding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        _el(idp, MD, "SingleSignOnService", Binding=binding, Location=self.sso_url)
        document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return document.decode()

    def response_for(self, authn_request: etree._Element) -> str:
        """A base64 SAML Response answering `authn_request`, faults applied."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        request_id = authn_request.get("ID", "")
        acs = authn_request.get("AssertionConsumerServiceURL", "")
        sp_entity = authn_request.findtext(f"{{{SAML}}}Issuer") or ""
        audience = (
            "https://someone-else.example/sp" if fault is SamlFault.WRONG_AUDIENCE else sp_entity
        )
        now = dt.datetime.now(dt.UTC)
        start = now + (_SHIFT.get(fault, dt.timedelta()) if fault else dt.timedelta())
        response = etree.Element(
            f"{{{SAMLP}}}Response",
            {"ID": f"_{secrets.token_hex(16)}", "Version": "2.0", "IssueInstant": _instant(now)},
            nsmap={"samlp": SAMLP, "saml": SAML},
        )
        response.set("Destination", acs)
        response.set("InResponseTo", request_id)
        _el(response, SAML, "Issuer", self.entity_id)
        status = _el(response, SAMLP, "Status")
        _el(status, SAMLP, "StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
        assertion = self._assertion(request_id, acs, audience, start)
        response.append(self._signed(assertion, fault))
        return base64.b64encode(etree.tostring(response)).decode()

    def _assertion(
        self, request_id: str, acs: str, audience: str, start: dt.datetime
    ) -> etree._Element:
        assertion = etree.Element(
            f"{{{SAML}}}Assertion",
            {"ID": f"_{secrets.token_hex(16)}", "Version": "2.0", "IssueInstant": _instant(start)},
            nsmap={"saml": SAML},
        )
        _el(assertion, SAML, "Issuer", self.entity_id)
        etree.SubElement(assertion, f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
        subject = _el(assertion, SAML, "Subject")
        _el(subject, SAML, "NameID", self.email, Format=EMAIL_FORMAT)
        confirmation = _el(
            subject, SAML, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"
        )
        end = _instant(start + LIFETIME)
        _el(
            confirmation,
            SAML,
            "SubjectConfirmationData",
            InResponseTo=request_id,
            NotOnOrAfter=end,
            Recipient=acs,
        )
        conditions = _el(assertion, SAML, "Conditions", NotBefore=_instant(start), NotOnOrAfter=end)
        _el(_el(conditions, SAML, "AudienceRestriction"), SAML, "Audience", audience)
        authn = _el(assertion, SAML, "AuthnStatement", AuthnInstant=_instant(start))
        context = _el(authn, SAML, "AuthnContext")
        _el(
            context,
            SAML,
            "AuthnContextClassRef",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        return assertion

    def _signed(self, assertion: etree._Element, fault: SamlFault | None) -> etree._Element:
        if fault is SamlFault.UNSIGNED:
            placeholder = assertion.find(f"{{{DS}}}Signature")
            assert placeholder is not None
            assertion.remove(placeholder)
            return assertion
        rogue = fault is SamlFault.WRONG_SIGNATURE
        signed: etree._Element = XMLSigner(c14n_algorithm=EXC_C14N).sign(
            assertion,
            key=self._rogue_key if rogue else self._key,
            cert=self._rogue_cert if rogue else self.cert_pem,
            reference_uri=assertion.get("ID"),
        )
        if fault is SamlFault.TAMPERED:
            name_id = signed.find(f".//{{{SAML}}}NameID")
            assert name_id is not None
            name_id.text = "intruder@example.com"
        return signed

    def _sso(self, request: Request) -> Response:
        """HTTP-Redirect binding in, HTTP-POST binding out (an auto-submitting form)."""
        try:
            raw = zlib.decompress(base64.b64decode(request.query_params["SAMLRequest"]), -15)
            authn_request = etree.fromstring(raw, _PARSER)
        except (KeyError, ValueError, zlib.error, etree.XMLSyntaxError):
            return PlainTextResponse("missing or malformed SAMLRequest", status_code=400)
        acs = html.escape(authn_request.get("AssertionConsumerServiceURL", ""))
        fields = {"SAMLResponse": self.response_for(authn_request)}
        if "RelayState" in request.query_params:
            fields["RelayState"] = request.query_params["RelayState"]
        inputs = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in fields.items()
        )
        page = (
            f'<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{acs}">{inputs}<noscript><button>Continue</button>'
            f"</noscript></form></body></html>"
        )
        return HTMLResponse(page)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="SAML IdP stand-in", openapi_url=None)

        @app.get("/saml/metadata")
        def metadata() -> Response:
            return Response(self.metadata(), media_type="application/samlmetadata+xml")

        app.add_api_route("/saml/sso", self._sso, methods=["GET"])
        return app


def main() -> None:
    """Run the IdP in the foreground; print its metadata URL as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    parser.add_argument("--email", default="test.user@example.com", help="the signed-in subject")
    args = parser.parse_args()
    standin = SamlStandin(args.email, port=args.port)
    print(json.dumps({"url": standin.url, "metadata_url": standin.entity_id}), flush=True)
    serve_forever(standin.app, standin._sock)


if __name__ == "__main__":
    main()
