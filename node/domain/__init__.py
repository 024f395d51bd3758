"""The node's domain: the rules of referrals and deliveries, with no SQL and no HTTP.

Pure modules: state machines as transition tables over enums. The store
(node/storage) asks them before it writes a state; the API (node/api) never
decides a transition itself.
"""
