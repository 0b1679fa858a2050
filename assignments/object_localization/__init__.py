"""Object Localization with TensorFlow: classify and localize one emoji in a 144x144 image.

Everything that is this course: the given material (``course``), the trusted reference
(``reference``, never shipped to learners, never visible in the sandbox), the checks
(``checks/public``, ``checks/hidden``), the hooks the engine calls (``assignment.yaml``:
``hooks``) and the original guided project's differences (``original_course``).
"""
