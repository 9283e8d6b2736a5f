"""Agent replies: one home for the reply feature, from the message that
triggers it to the reply's ``message.created``.

Walk it in this order:

- ``job``: the reply job's name and data (conversation, trigger, agent);
- ``triggers``: which agents a message triggers, and queueing their reply
  jobs in the transaction that stores the message (``message.send``);
- ``inputs``: what one reply attempt needs, loaded when it starts (the agent,
  its provider with the secret resolved now, the context);
- ``processor``: the job's processor, which streams the completion;
- ``storing``: storing the reply with its llm_messages, or an error message;
- ``outcome``: the job's outcome handler, which stores the reply (or the
  error message) with the job's outcome and the agent's status, in one
  transaction;
- ``job_type``: the job type app.py registers with the scheduler.

Its queries live in ``wizd.store.replies``. This file imports nothing:
``services.messages`` calls ``triggers``, and ``storing`` uses
``services.messages``.
"""
