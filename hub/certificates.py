"""Node certificates: the hub's signature on an office's keys.

Issued at enrollment (hub/enrollment.py) and after a key rotation
(hub/rotation.py), with the same content and lifetime: the site's identity
from the hub's records, the keys the node proved it holds, valid for
`enrollment.cert_ttl` from `now`.
"""

from __future__ import annotations

from hub.settings import HubSettings
from hub.storage.sites import Site
from protocol.documents import NodeCertificate
from protocol.keys import PrivateKeys, PublicKeys


def issue_certificate(
    hub_keys: PrivateKeys, settings: HubSettings, site: Site, node_keys: PublicKeys, now: int
) -> bytes:
    """The signed certificate for `site` holding `node_keys`, issued at `now`."""
    return NodeCertificate(
        node_id=site.node_id,
        name=site.name,
        org=site.org,
        keys=node_keys,
        issued=now,
        expires=now + settings.enrollment.cert_ttl,
    ).sign(hub_keys)
