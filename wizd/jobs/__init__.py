"""The job queue, generic: it knows no job type and nothing of agents.

- ``queue``: operations over the jobs table, each one transaction plus its events;
- ``scheduler``: the task group that claims and runs jobs;
- ``registry``: the job types a scheduler runs (name -> processor, outcome
  handler), built by app.py;
- ``outcome``: what a job's outcome means (the generic handler), failure
  reasons for clients;
- ``backoff``: when a failed job runs again;
- ``retention``: finished jobs are pruned.

The job types wizd has live with their features (wizd.replies).
"""
