"""SAML 2.0 service provider: AuthnRequest (HTTP-Redirect), IdP metadata, Response validation.

A Response is trusted only through what signxml verified with the tenant's IdP certificate
("see what is signed"): the signed Assertion, or the Assertion inside a signed Response.
Then its issuer, audience, recipient and time window (small clock skew) are checked; the
caller checks InResponseTo against its pending request and the assertion id for replay.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import zlib
from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from app.signin.oidc import SigninError

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
# No DTDs, no entities, no network: the input comes from the internet.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class IdpSettings:
    """What the SP must know about a tenant's IdP."""

    entity_id: str
    sso_url: str
    certificate: str  # PEM


@dataclass(frozen=True)
class SpSettings:
    """This service provider as one tenant's IdP knows it."""

    entity_id: str
    acs_url: str


@dataclass(frozen=True)
class Assertion:
    """The verified facts of a SAML assertion."""

    id: str
    in_response_to: str
    email: str
    not_on_or_after: dt.datetime


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _parse(xml: bytes) -> etree._Element:
    try:
        return etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SigninError(
            "saml_malformed", "The SAML message is not well-formed XML.", 400
        ) from exc


def new_request_id() -> str:
    """An xsd:ID for an AuthnRequest (must not start with a digit)."""
    return f"_{secrets.token_hex(20)}"


def authn_request_url(idp: IdpSettings, sp: SpSettings, request_id: str, relay_state: str) -> str:
    """The IdP URL carrying a deflated AuthnRequest (HTTP-Redirect binding)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = etree.Element(
        _q(SAMLP, "AuthnRequest"),
        {
            "ID": request_id,
            "Version": "2.0",
            "IssueInstant": now,
            "Destination": idp.sso_url,
            "ProtocolBinding": POST_BINDING,
            "AssertionConsumerServiceURL": sp.acs_url,
        },
        nsmap={"samlp": SAMLP, "saml": SAML},
    )
    etree.SubElement(request, _q(SAML, "Issuer")).text = sp.entity_id
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflate.compress(etree.tostring(request)) + deflate.flush()
    query = urlencode({"SAMLRequest": base64.b64encode(raw).decode(), "RelayState": relay_state})
    separator = "&" if "?" in idp.sso_url else "?"
    return f"{idp.sso_url}{separator}{query}"


def parse_metadata(xml: str) -> IdpSettings:
    """Entity id, HTTP-Redirect SSO URL and signing certificate from IdP metadata."""
    root = _parse(xml.encode())
    idp = root.find(_q(MD, "IDPSSODescriptor"))
    if root.tag != _q(MD, "EntityDescriptor") or idp is None:
        raise SigninError("saml_metadata", "The metadata describes no SAML identity provider.", 422)
    sso = next(
        (
            s
            for s in idp.iter(_q(MD, "SingleSignOnService"))
            if s.get("Binding") == REDIRECT_BINDING
        ),
        None,
    )
    certificate = next(
        (
            k.findtext(f".//{_q(DS, 'X509Certificate')}")
            for k in idp.iter(_q(MD, "KeyDescriptor"))
            if k.get("use") in (None, "signing")
        ),
        None,
    )
    if sso is None or not certificate or not root.get("entityID"):
        raise SigninError(
            "saml_metadata",
            "The metadata lacks an entityID, a redirect SSO URL or a certificate.",
            422,
        )
    return IdpSettings(
        str(root.get("entityID")), str(sso.get("Location")), normalize_certificate(certificate)
    )


def normalize_certificate(text: str) -> str:
    """A certificate given as PEM or bare base64 DER, as canonical PEM."""
    body = "".join(line for line in text.strip().splitlines() if "-----" not in line)
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode("".join(body.split())))
    except ValueError as exc:
        raise SigninError(
            "saml_certificate", "The IdP certificate is not a valid X.509 certificate.", 422
        ) from exc
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def validate_response(
    saml_response: str, idp: IdpSettings, sp: SpSettings, *, now: dt.datetime, skew: dt.timedelta
) -> Assertion:
    """Verify a base64 HTTP-POST Response and return its assertion's facts."""
    try:
        root = _parse(base64.b64decode(saml_response, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SigninError("saml_malformed", "SAMLResponse is not base64.", 400) from exc
    if root.tag != _q(SAMLP, "Response"):
        raise SigninError("saml_malformed", "The SAML message is not a Response.", 400)
    status = root.find(f"{_q(SAMLP, 'Status')}/{_q(SAMLP, 'StatusCode')}")
    if status is None or status.get("Value") != SUCCESS:
        raise SigninError("saml_status", "The identity provider did not authenticate the user.")
    assertion = _verified_assertion(root, idp)
    if assertion.findtext(_q(SAML, "Issuer")) != idp.entity_id:
        raise SigninError("saml_issuer", "The assertion comes from another identity provider.")
    not_on_or_after = _check_conditions(assertion, sp, now, skew)
    in_response_to, confirmation_end = _check_subject_confirmation(assertion, sp, now, skew)
    return Assertion(
        id=str(assertion.get("ID", "")),
        in_response_to=in_response_to,
        email=_email(assertion),
        not_on_or_after=min(not_on_or_after, confirmation_end),
    )


def _verified_assertion(root: etree._Element, idp: IdpSettings) -> etree._Element:
    """The one Assertion, taken from signxml's verified output only."""
    assertions = root.findall(_q(SAML, "Assertion"))
    if root.find(_q(SAML, "EncryptedAssertion")) is not None:
        raise SigninError("saml_encrypted", "Encrypted assertions are not supported.", 400)
    if len(assertions) != 1:
        raise SigninError("saml_malformed", "The Response must carry exactly one Assertion.", 400)
    assertion_signed = assertions[0].find(_q(DS, "Signature")) is not None
    location = f"./{_q(SAML, 'Assertion')}/" if assertion_signed else "./"
    if not assertion_signed and root.find(_q(DS, "Signature")) is None:
        raise SigninError("saml_unsigned", "The assertion is not signed.")
    try:
        result = XMLVerifier().verify(
            root,
            x509_cert=idp.certificate,
            expect_config=SignatureConfiguration(location=location, expect_references=1),
        )
    except (InvalidSignature, InvalidInput) as exc:  # digest and certificate errors too
        raise SigninError("saml_bad_signature", "The assertion signature does not verify.") from exc
    assert not isinstance(result, list)  # expect_references=1
    signed = result.signed_xml
    if signed is not None and signed.tag == _q(SAMLP, "Response"):
        signed = signed.find(_q(SAML, "Assertion"))
    if signed is None or signed.tag != _q(SAML, "Assertion"):
        raise SigninError("saml_bad_signature", "The signature does not cover the assertion.")
    return signed


def _instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SigninError("saml_malformed", f"Bad SAML time {value!r}.", 400) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _check_conditions(
    assertion: etree._Element, sp: SpSettings, now: dt.datetime, skew: dt.timedelta
) -> dt.datetime:
    conditions = assertion.find(_q(SAML, "Conditions"))
    if conditions is None:
        raise SigninError("saml_conditions", "The assertion has no validity window.")
    not_before = _instant(conditions.get("NotBefore"))
    not_on_or_after = _instant(conditions.get("NotOnOrAfter"))
    if not_on_or_after is None or now >= not_on_or_after + skew:
        raise SigninError("saml_expired", "The assertion has expired.")
    if not_before is not None and now < not_before - skew:
        raise SigninError("saml_not_yet_valid", "The assertion is not valid yet.")
    restrictions = conditions.findall(_q(SAML, "AudienceRestriction"))
    # Every AudienceRestriction must name us (SAML core 2.5.1.4).
    if not restrictions or any(
        sp.entity_id not in [a.text for a in r.findall(_q(SAML, "Audience"))] for r in restrictions
    ):
        raise SigninError("saml_audience", "The assertion is meant for another service.")
    return not_on_or_after


def _check_subject_confirmation(
    assertion: etree._Element, sp: SpSettings, now: dt.datetime, skew: dt.timedelta
) -> tuple[str, dt.datetime]:
    """A bearer confirmation for our ACS, still valid; returns (InResponseTo, its end)."""
    for confirmation in assertion.iterfind(
        f"{_q(SAML, 'Subject')}/{_q(SAML, 'SubjectConfirmation')}"
    ):
        data = confirmation.find(_q(SAML, "SubjectConfirmationData"))
        if confirmation.get("Method") != BEARER or data is None:
            continue
        end = _instant(data.get("NotOnOrAfter"))
        if data.get("Recipient") != sp.acs_url:
            raise SigninError("saml_recipient", "The assertion is addressed to another endpoint.")
        if end is None or now >= end + skew:
            raise SigninError("saml_expired", "The assertion has expired.")
        return data.get("InResponseTo", ""), end
    raise SigninError("saml_subject", "The assertion has no bearer subject confirmation.")


def _email(assertion: etree._Element) -> str:
    name_id = assertion.findtext(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}") or ""
    candidates = [name_id.strip()]
    for attribute in assertion.iter(_q(SAML, "Attribute")):
        if attribute.get("Name") in EMAIL_ATTRIBUTES:
            candidates += [v.text or "" for v in attribute.findall(_q(SAML, "AttributeValue"))]
    email = next((c.strip() for c in candidates if "@" in c), None)
    if email is None:
        raise SigninError("no_email", "The assertion names no e-mail address.")
    return email
