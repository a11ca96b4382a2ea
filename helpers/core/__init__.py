"""What every stage uses: configuration, presets, file formats, model loading, the LLM client, the gold
questions and the notebook setup. Imports no stage; nothing heavy is imported here."""
