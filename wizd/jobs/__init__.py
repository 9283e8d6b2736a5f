"""The job queue (generic), the scheduler that runs it, and the job types wizd has.

- ``queue``: operations over the jobs table, each one transaction plus its events;
- ``scheduler``: the task group that claims and runs jobs;
- ``completion``: what each job type's outcome means, routed by job name;
- ``backoff``: when a failed job runs again;
- ``response_generator``: an agent's reply to a message.
"""
