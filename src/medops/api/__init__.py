"""The medops Python API: what the CLI, the web server and notebooks share.

Every function takes a store (``db``: a path or URL, or an open :class:`Store`) and returns plain
data; nothing here prints or exits. Errors a user can fix raise :class:`medops.errors.UserError`
with a one-line message::

    from medops import api

    config = api.healthbench_config(data="demo", model="local:smollm2", grader="local:smollm2", limit=2)
    outcome = api.evaluate(config, db="medops.db", name="smoke")
    print(outcome.status, outcome.summary["score"])
    print(api.compare("baseline", "smoke", db="medops.db")["metrics"]["overall_score"])
    verdicts = api.gate("smoke", [api.Rule(metric="overall_score", min=0.4)], db="medops.db")

Accounts (``medops.accounts``: users, tokens, sessions) take an open store as their first argument
(``api.open_store(db)``) and an audit ``actor``.
"""

from medops.accounts import (
    ROLES,
    AuthError,
    Principal,
    WebSession,
    add_user,
    check_name,
    close_session,
    create_token,
    disable_user,
    login,
    open_session,
    remove_user,
    revoke_token,
    session_principal,
    set_password,
    sso_failed,
    sso_login,
    token_principal,
    tokens,
    users,
)
from medops.api.audit import audit_events
from medops.api.canary_rounds import canary, check_canary
from medops.api.examples import run_example, run_examples, text_of
from medops.api.images import export_with_images, run_image
from medops.api.monitoring import acknowledge_alert, alerts, monitoring
from medops.api.review import (
    adjudicate_review,
    create_review_set,
    export_review,
    import_review_labels,
    label_review_example,
    next_review_position,
    review_disagreements,
    review_queue_item,
    review_sets,
    review_status,
    set_review_blinding,
)
from medops.api.run_pages import compare_detail, datasets, gate_history, run_detail, runs_filtered
from medops.api.runs import (
    Rule,
    RunNotice,
    RunOutcome,
    StoreRef,
    Verdict,
    compare,
    config_notes,
    evaluate,
    exam_config,
    export,
    gate,
    healthbench_config,
    load_policy,
    meta_eval_config,
    open_store,
    report,
    resume,
    run,
    run_subscribers,
    runs,
)

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "Rule",
    "RunNotice",
    "RunOutcome",
    "StoreRef",
    "Verdict",
    "WebSession",
    "acknowledge_alert",
    "add_user",
    "adjudicate_review",
    "alerts",
    "audit_events",
    "canary",
    "check_canary",
    "check_name",
    "close_session",
    "compare",
    "compare_detail",
    "config_notes",
    "create_review_set",
    "create_token",
    "datasets",
    "disable_user",
    "evaluate",
    "exam_config",
    "export",
    "export_review",
    "export_with_images",
    "gate",
    "gate_history",
    "healthbench_config",
    "import_review_labels",
    "label_review_example",
    "load_policy",
    "login",
    "meta_eval_config",
    "monitoring",
    "next_review_position",
    "open_session",
    "open_store",
    "remove_user",
    "report",
    "resume",
    "review_disagreements",
    "review_queue_item",
    "review_sets",
    "review_status",
    "revoke_token",
    "run",
    "run_detail",
    "run_example",
    "run_examples",
    "run_image",
    "run_subscribers",
    "runs",
    "runs_filtered",
    "session_principal",
    "set_password",
    "set_review_blinding",
    "sso_failed",
    "sso_login",
    "text_of",
    "token_principal",
    "tokens",
    "users",
]
