"""All SQL of the queue, the LUT entries, the audit trail and the space names.

``store.jobs`` is the only writer of the ``jobs`` table (the job state machine lives there) and
``store.entries`` the only writer of ``lut_entries``; services call them and never write those tables.
"""
