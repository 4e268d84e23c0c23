"""On-call's audit trail (the trail itself is common/infra/audit_trail.py, so the worker and the API record in it too).

Every state-changing on-call command records who, what, to which customers and why through `Audit`.
"""

from common.infra.audit_trail import AUDIT_CAP, KIND, Actor, Audit, NoReasonError, os_user

__all__ = ["AUDIT_CAP", "KIND", "Actor", "Audit", "NoReasonError", "os_user"]
