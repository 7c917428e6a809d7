DROP TABLE public.document_history;
DROP TABLE public.document_collaborators;
DROP TABLE public.documents;
DROP FUNCTION public.documents_bump_version();
