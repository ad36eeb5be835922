"""Run scorer jobs from Airflow: ``ScorerOperator`` and scorer's exit-code policy."""

from scorer_airflow.operator import RETRYABLE, ScorerOperator, raise_for_exit

__all__ = ["RETRYABLE", "ScorerOperator", "raise_for_exit"]
