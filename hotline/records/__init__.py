"""The call record form: drafts, validation, completion and the history of later edits."""
