"""The deploy kit: what goes onto a board and what its answers are held against. A models
directory's runtime bundle and model files (``bundle``), firmware image manifests
(``images``), the fixed prompts (``prompts``), pictures (``pictures``) and golden answers
(``golden``; ``hil golden`` in ``goldencmd``)."""
