"""Python hooks: the user's own functions at named stages of a request (docs/hooks.md).

The public values are re-exported by ``gateway`` itself: ``gateway.hook``, ``gateway.HookRequest``,
``gateway.HookResponse``, ``gateway.Respond``, ``gateway.Forward``, ``gateway.ResponseChanges``.

api.py     the public values (what a hook gets and returns), importable without the config
loader.py  ``[hooks]`` and a route's ``hooks = [...]``: importing the module, finding its hooks
runner.py  running a stage's hooks (timeouts, on_error, logging) and applying their values
"""

from gateway.hooks.api import HOOK_STAGES, Forward, Headers, HookRequest, HookResponse, Respond, ResponseChanges, hook

__all__ = ["HOOK_STAGES", "Forward", "Headers", "HookRequest", "HookResponse", "Respond", "ResponseChanges", "hook"]
