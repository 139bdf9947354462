"""How a transcript is scored against its reference: English normalisation (`normalize`), then
word and character error rates and their alignments (`metrics`). Below every stage that scores:
the teacher's label filters, the trainer's dev WER, evaluation and the report."""
