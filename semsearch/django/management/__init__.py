"""``manage.py semsearch_*`` commands (see ``commands/``) and what they share."""
