"""Provider clients: one module (or package) per provider API, behind one small interface
(``base``), one error model (``errors``) and one result model (``results``)."""
