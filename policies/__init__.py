# Shipped policies (YAML). Installed as the package `gate.policies` so that
# `importlib.resources.files("gate.policies")` finds them in any install.
