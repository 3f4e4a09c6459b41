"""The dispatcher's domain logic: plain functions and classes the Celery tasks call.

Tasks stay thin (claim, call, record); everything here runs and is tested without Celery.
"""
