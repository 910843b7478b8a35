"""Daily call log and periodic reports: built by the worker, reviewed and signed off by supervisors."""
