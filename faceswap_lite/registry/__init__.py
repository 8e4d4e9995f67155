"""Registries for plugins (losses, detectors, models) and the one way plugins are loaded: the public
plugin API (``from faceswap_lite.registry import register_loss``).

A registry is a dict and a decorator (:mod:`.core`). Plugins come from three places, in this order,
through the same decorators (:mod:`.loading`):

1. the built-ins shipped in ``faceswap_lite.plugins`` (they are the first users of this API);
2. installed distributions declaring the entry-point group ``faceswap_lite.plugins`` (the value
   names a module; importing it runs its ``@register_*`` decorators);
3. ``.py`` files in plugin folders (``--plugins-dir``, repeatable, or the ``plugins.dirs`` config key).

A plugin that fails to import does not stop the others: the failure is recorded with the file and
the exception, reported as a warning, and named again if the user asks for a name it might have held.

Every kind is built and described the same way, ``REGISTRY.build(name, settings, **injected)`` and
``REGISTRY.describe(name)``; the settings are checked against the constructor first
(:mod:`.settings`). What differs per kind (the contract a built plugin must meet, the facts a listing
shows) lives in the kind's own module, named by ``hooks`` and imported only when used, so building a
detector never imports torch. :func:`scope` undoes registrations and loads (tests run in one).
"""

from .core import (
    DETECTORS,
    LOSSES,
    MODELS,
    REGISTRIES,
    PluginInfo,
    Registry,
    load_plugins,
    register_detector,
    register_loss,
    register_model,
    scope,
)
from .loading import (
    BUILT_IN,
    ENTRY_POINT,
    ENTRY_POINT_GROUP,
    FOLDER,
    PluginFailure,
    load_plugin_file,
    plugin_failures,
    rescan_entry_points,
)
from .settings import check_choices, check_settings, constructor_settings

__all__ = [
    "BUILT_IN", "DETECTORS", "ENTRY_POINT", "ENTRY_POINT_GROUP", "FOLDER", "LOSSES", "MODELS", "REGISTRIES",
    "PluginFailure", "PluginInfo", "Registry", "check_choices", "check_settings", "constructor_settings",
    "load_plugin_file", "load_plugins", "plugin_failures", "register_detector", "register_loss",
    "register_model", "rescan_entry_points", "scope",
]
