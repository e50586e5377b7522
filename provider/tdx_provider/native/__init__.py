"""The native Pulumi provider plugin ``pulumi-resource-tdx``: the package schema generated from
the specs (:mod:`.schema`), its Markdown reference (:mod:`.docs`), and a gRPC adapter over the
engine's resource controllers (:mod:`.provider`, started by :mod:`.main`).

Like :mod:`tdx_provider.dynamic`, it translates and decides nothing: names (camelCase <->
snake_case), values (Pulumi property values <-> plain Python, unknowns, secrets) and errors.
"""
