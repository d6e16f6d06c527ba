"""Export: one converter per path, named source-to-target, each a plain function (source, spec) -> Path."""
